"""The reporting loop: build batches every interval, send due ones, reload a changed config; own process or thread."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.config import ConfigError
from server.models import utcnow
from server.reporting import outbox
from server.reporting.config import ReportingConfig, Secret, load_config, load_secret
from server.reporting.sender import Context, Sent, reveal_with, send_one
from server.reporting.transport import post

log = logging.getLogger("guardpost.reporting")

POLL_S = 2.0  # how soon a re-send asked for on the page goes out
SEND_PAGE = 100


def load(path: Path, key_file: Path | None = None) -> tuple[ReportingConfig, Secret, object]:
    """Config, secret and (only when the mapping asks for full numbers) the server cipher; ConfigError if not."""
    config = load_config(path)
    secret = load_secret(config)
    cipher = None
    if config.needs_full_numbers():
        from server.crypto import load_cipher

        try:
            cipher = load_cipher(key_file)
        except ConfigError as exc:
            raise ConfigError(f"the mapping sends full ID numbers, so it needs the server key: {exc}") from None
    return config, secret, cipher


@dataclass
class Round:
    built: list[outbox.Built] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return any(s.status in ("refused", "failed") for s in self.sent)


class Reporter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: ReportingConfig,
        secret: Secret,
        cipher=None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
        post_fn=post,
        echo: Callable[[str], None] | None = None,
    ):
        self.sessions, self.clock, self.rand, self.post = sessions, clock, rand, post_fn
        self.echo = echo or log.info
        self._hold_until: datetime | None = None
        self.configure(config, secret, cipher)

    def configure(self, config: ReportingConfig, secret: Secret, cipher=None) -> None:
        self.config, self.secret = config, secret
        self.reveal = reveal_with(cipher) if cipher is not None else None

    def build_all(self) -> list[outbox.Built]:
        done = []
        for kind in self.config.mapping:
            with self.sessions() as session:
                built = outbox.build(session, self.config, kind, self.clock())
            done.append(built)
            if built.conflict:
                self.echo(f"{kind}: another reporter built batches meanwhile; this round leaves it to them")
            elif built.batch_ids:
                self.echo(
                    f"{kind}: {built.scanned} record(s) checked, {built.new} new, {built.changed} changed, "
                    f"{built.deleted} gone -> {len(built.batch_ids)} batch(es)"
                )
        return done

    def send_due(self) -> list[Sent]:
        """Send every due batch, oldest first. At the first sign the endpoint is down, stop, and send nothing
        more until that batch's retry is due: the other batches keep their attempts for when it is back."""
        if self._hold_until is not None and self.clock() < self._hold_until:
            return []
        self._hold_until = None
        ctx = Context(self.config, self.secret, self.reveal, self.clock, self.rand, self.post)
        results: list[Sent] = []
        tried: set[int] = set()
        while True:
            with self.sessions() as session:
                batches = [b for b in outbox.due(session, self.clock(), SEND_PAGE) if b.id not in tried]
                if not batches:
                    return results
                for batch in batches:
                    tried.add(batch.id)
                    sent = send_one(session, batch, ctx)
                    if sent is None:
                        continue
                    results.append(sent)
                    self.echo(sent.line())
                    if sent.retryable:
                        self._hold_until = sent.retry_at
                        return results

    def run_once(self) -> Round:
        return Round(self.build_all(), self.send_due())

    def next_due_in(self) -> float | None:
        with self.sessions() as session:
            at = outbox.next_due_at(session)
        if at is None:
            return None
        if self._hold_until is not None:
            at = max(at, self._hold_until)
        return (at - self.clock()).total_seconds()


class Watcher:
    """Reloads the config when its file changes; a broken edit is logged and the running config kept."""

    def __init__(self, path: Path, key_file: Path | None = None):
        self.path, self.key_file = path, key_file
        self._stamp = self._mtime()

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def changed(self) -> tuple[ReportingConfig, Secret, object] | None:
        stamp = self._mtime()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            loaded = load(self.path, self.key_file)
        except ConfigError as exc:
            log.error("reporting config changed but is not usable, keeping the previous one: %s", exc)
            return None
        log.info("reporting config %s reloaded", self.path)
        return loaded


def run_loop(reporter: Reporter, stop: threading.Event, watcher: Watcher | None = None) -> None:
    """Until ``stop``: build every interval, send what is due, wake at least every POLL_S."""
    next_build = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_build:
                if watcher is not None and (loaded := watcher.changed()) is not None:
                    reporter.configure(*loaded)
                reporter.build_all()
                next_build = time.monotonic() + reporter.config.interval_s
            reporter.send_due()
            due_in = reporter.next_due_in()
        except OperationalError as exc:
            log.error("reporting: database unavailable (%s); will retry", exc.__class__.__name__)
            due_in = None
        except Exception:  # a bad row must not end reporting; the next round tries again
            log.exception("reporting round failed")
            due_in = None
        wait = min(POLL_S, max(0.0, next_build - time.monotonic()))
        if due_in is not None:
            wait = min(wait, max(0.05, due_in))
        stop.wait(max(0.05, wait))


class ReportingService:
    """The loop in a thread of ``guardpost server`` (when GUARDPOST_REPORTING_CONFIG is set)."""

    def __init__(self, sessions: sessionmaker[Session], path: Path, key_file: Path | None = None):
        config, secret, cipher = load(path, key_file)
        self.reporter = Reporter(sessions, config, secret, cipher)
        self.watcher = Watcher(path, key_file)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_loop, args=(self.reporter, self._stop, self.watcher), name="reporting", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def start_reporting(engine, key_file: Path | None = None) -> ReportingService | None:
    """The server's hook: a reporting thread when GUARDPOST_REPORTING_CONFIG names a config, else None."""
    from server.db import make_sessionmaker
    from server.reporting.config import config_path

    path = config_path(None)
    if path is None:
        return None
    service = ReportingService(make_sessionmaker(engine), path, key_file)
    service.start()
    log.info("provincial reporting to %s", service.reporter.config.endpoint)
    return service
