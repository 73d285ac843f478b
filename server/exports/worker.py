"""The export worker: a thread pool in the server process fed from the export_jobs table, restart-safe."""

from __future__ import annotations

import logging
import re
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.config import ConfigError
from server.exports import jobs
from server.exports.runner import ensure_dir, remove_files, run_job
from server.exports.settings import ExportSettings
from server.exports.tables import ExportJob

log = logging.getLogger("guardpost.exports")
EXTENSION = "guardpost-exports"
WORK_DIR = re.compile(r"tmp-(\d+)-[0-9a-f]+")


class ExportWorker:
    """Claims queued jobs (any number of server processes may run one), runs them on ``settings.threads``
    threads, keeps their heartbeat, re-queues jobs of dead workers and deletes expired files.

    At start, jobs left running by a server that crashed on this host are re-queued at once; a worker on
    another host is presumed dead once its jobs' heartbeat is ``stale_after_s`` old.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: ExportSettings):
        self.sessions, self.settings = sessions, settings
        self.id = jobs.WorkerId.new()
        self._pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="export")
        self._running: dict[int, Future] = {}
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="export-dispatcher", daemon=True)

    def attach(self, app: Flask) -> ExportWorker:
        """Let the app's export API wake this worker and find its settings."""
        app.extensions[EXTENSION] = self
        return self

    def start(self) -> ExportWorker:
        try:
            ensure_dir(self.settings.export_dir)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the export folder {self.settings.export_dir}: {exc.strerror}; set GUARDPOST_DATA_DIR"
            ) from None
        self._recover()
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; running jobs stop at their next guard and go back to the queue."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _recover(self) -> None:
        try:
            self.run_once(claim=False)
            self._remove_stray_work_dirs()
        except OperationalError as exc:
            log.error("exports: database unavailable at start (%s); will retry", exc.__class__.__name__)

    def _remove_stray_work_dirs(self) -> None:
        with self.sessions() as session:
            running = set(session.scalars(select(ExportJob.id).where(ExportJob.status == "running")))
        for path in self.settings.export_dir.iterdir():
            found = WORK_DIR.fullmatch(path.name)
            if found and path.is_dir() and int(found.group(1)) not in running:
                shutil.rmtree(path, ignore_errors=True)  # half-written files of a crashed run

    def run_once(self, claim: bool = True) -> list[int]:
        """One round: heartbeat, re-queue the dead's jobs, expire old files, claim what there is room for."""
        self._running = {job_id: f for job_id, f in self._running.items() if not f.done()}
        settings = self.settings
        with self.sessions() as session:
            jobs.heartbeat(session, self.id, set(self._running))
            requeued, failed = jobs.requeue_abandoned(
                session, self.id, set(self._running), timedelta(seconds=settings.stale_after_s), settings.max_attempts
            )
            if requeued or failed:
                log.warning("exports: %d job(s) of a stopped worker queued again, %d given up", requeued, failed)
            for job in jobs.expired_jobs(session):
                remove_files(settings.export_dir, job)
                jobs.mark_expired(session, job)
            claimed = []
            room = settings.threads - len(self._running)
            if claim and room > 0 and not self._stop.is_set():
                for job_id in jobs.queued_ids(session, room):
                    if jobs.claim(session, job_id, self.id):
                        claimed.append(job_id)
        for job_id in claimed:
            self._running[job_id] = self._pool.submit(run_job, self.sessions, settings, job_id, self.id, self._stop)
        return claimed

    def wait_idle(self, timeout: float) -> bool:
        """Tests and the CLI: wait until no job of this worker is running."""
        for future in list(self._running.values()):
            try:
                future.result(timeout)
            except Exception:
                return False
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the round: a wake during it is not lost
            try:
                self.run_once()
            except OperationalError as exc:
                log.error("exports: database unavailable (%s); will retry", exc.__class__.__name__)
            except Exception:  # the dispatcher must outlive a bad row
                log.exception("exports: dispatcher round failed")
            self._wake.wait(self.settings.poll_s)
