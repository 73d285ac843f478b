"""Composition root of the terminal: sources, readers and the gate -> outbox -> MQTT, with feedback."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from biometrics.faces import FaceEncoder
from edge_agent import watchdog
from edge_agent.clock import boot_id, clock_synced
from edge_agent.config import AgentConfig, ConfigError
from edge_agent.display import DisplayError, build_display
from edge_agent.evidence import EvidenceStore
from edge_agent.feedback import FeedbackHub, Verdict
from edge_agent.gallery import GalleryStore, GallerySync
from edge_agent.gate import Gate, GateRules, Recording
from edge_agent.gpio import build_actuators
from edge_agent.liveness import AntiSpoof
from edge_agent.outbox import Outbox, OutboxFull
from edge_agent.publisher import Publisher
from edge_agent.readers import CardReader, QrReader, open_reader
from edge_agent.sources import FrameSource, open_source
from protocol.events import build_event, build_heartbeat
from protocol.faults import crash_point

log = logging.getLogger("guardpost.agent")
try:
    VERSION = metadata.version("guardpost")  # what the heartbeat reports as the terminal's software version
except metadata.PackageNotFoundError:
    VERSION = "unknown"
PURGE_EVERY_S = 3600.0
STORAGE_FULL = "Check-in NOT recorded: terminal storage is full. Please call the supervisor."


def cpu_temp_c() -> float | None:
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None


class Agent:
    def __init__(self, config: AgentConfig, source: FrameSource | None = None, reader: CardReader | None = None):
        self.config = config
        self._secret = config.secret()
        state = config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(state / "outbox.sqlite3", config.outbox.max_events, config.outbox.min_free_mb)
        self.gallery = GalleryStore(state / "gallery.enc", config.gallery_key(), config.site_id)
        self._sync = GallerySync(
            self.gallery, config.server.url, config.device_id, self._secret, config.server.timeout_s
        )
        self.publisher = Publisher(
            config.device_id,
            config.site_id,
            config.mqtt.url,
            self.outbox,
            config.mqtt.keepalive_s,
            username=config.mqtt.username,
            password=config.mqtt_password(),
            tls=config.mqtt.tls_files(),
        )
        self.evidence = EvidenceStore(state / "evidence", config.evidence.retention_days, config.evidence.max_mb)
        self.feedback = FeedbackHub()
        self._display = build_display(config.display, config.device_id)
        if self._display is not None:
            self.feedback.add(self._display[0])
        try:
            actuators = build_actuators(config.gpio)
            antispoof = AntiSpoof.from_config(config.liveness)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if actuators is not None:
            self.feedback.add(actuators)
        self.reader = reader if reader is not None else open_reader(config.cards.reader)
        self._qr = QrReader() if config.cards.qr else None
        needs_frames = config.mode != "card" or self._qr is not None
        self._source = source or (open_source(config.source.spec, loop=config.source.loop) if needs_frames else None)
        rc = config.recognition
        rules = GateRules(
            mode=config.mode,
            event_type=config.event_type,
            threshold=rc.threshold,
            min_margin=rc.min_margin,
            borderline_threshold=rc.borderline_threshold,
            cooldown_s=rc.cooldown_s,
            card_window_s=config.cards.window_s,
            presentation=config.presentation,
            quality=config.quality,
            liveness=config.liveness,
        )
        encoder = FaceEncoder(detect_width=rc.detect_width)
        self.gate = Gate(rules, lambda: self.gallery.current, encoder, antispoof, self.feedback.show)
        self.alarms: dict[str, str] = {}

    # -- recording ---------------------------------------------------------------------------------
    def record(self, recording: Recording) -> dict[str, Any] | None:
        """Store the event (evidence first, then the outbox) and tell the guard; None if it could not be stored."""
        evidence = None
        if recording.frame is not None:
            try:
                evidence = self.evidence.keep(recording.frame.rgb)
            except OSError as exc:
                self._alarm("evidence", f"cannot store the evidence snapshot: {exc.strerror}")
        crash_point("before_outbox_write")
        try:
            event = self.outbox.append(lambda seq: self._build(seq, recording, evidence))
        except OutboxFull as exc:
            self._alarm("outbox", str(exc))
            self.feedback.show(Verdict.denied(STORAGE_FULL, "Not recorded"))
            return None
        crash_point("after_outbox_write")
        self.alarms.pop("outbox", None)
        log.info(
            "%s %s by %s -> outbox seq %s",
            event["type"],
            recording.guard_id or recording.candidate_id or "unknown",
            event["method"],
            event["seq"],
        )
        self.feedback.show(recording.verdict)
        return event

    def _build(self, seq: int, recording: Recording, evidence_sha256: str | None) -> dict[str, Any]:
        return build_event(
            secret=self._secret,
            device_id=self.config.device_id,
            site_id=self.config.site_id,
            seq=seq,
            type=recording.type,
            method=recording.method,
            guard_id=recording.guard_id,
            candidate_guard_id=recording.candidate_id,
            captured_at=datetime.now(UTC),
            clock_synced=clock_synced(self.config.clock.sync_check),
            monotonic_s=time.monotonic(),
            boot_id=boot_id(),
            match=recording.match,
            card_number_masked=recording.card_masked,
            evidence_sha256=evidence_sha256,
        )

    def _alarm(self, key: str, message: str) -> None:
        if self.alarms.get(key) != message:
            log.error("ALARM %s: %s", key, message)
        self.alarms[key] = message

    # -- one turn of the loop ----------------------------------------------------------------------
    def step(self, t: float) -> bool:
        """Look at one frame and one card read; False once a finite source is exhausted."""
        frame = self._source.read() if self._source is not None else None
        problem = getattr(self._source, "problem", None)
        if problem:
            self._alarm("source", problem)
        else:
            self.alarms.pop("source", None)
        read = self.reader.poll() if self.reader is not None else None
        if read is None and frame is not None and self._qr is not None:
            read = self._qr.scan(frame.rgb)
        recordings = [self.gate.on_card(read, t)] if read is not None else []
        if frame is not None:
            recordings += self.gate.on_frame(frame, t)
        recordings.append(self.gate.tick(t))
        live = getattr(self._source, "live", False) or self.config.source.loop or self._source is None
        if frame is None and not live:
            recordings.append(self.gate.end(t))
        for recording in recordings:
            if recording is not None:
                self.record(recording)
        return frame is not None or live

    def run(self, stop: threading.Event, exit_when_drained: bool = False) -> int:
        self.publisher.start()
        self._sync.sync_once()
        threading.Thread(target=self._housekeeping, args=(stop,), name="housekeeping", daemon=True).start()
        if self._display is not None:
            try:
                self._display[1].start()
            except DisplayError as exc:
                self._alarm("display", str(exc))
        watchdog.ready()
        ping_every = watchdog.watchdog_interval_s()
        min_interval = 1.0 / self.config.source.max_fps
        next_heartbeat = next_ping = 0.0
        exhausted = False
        try:
            while not stop.is_set():
                started = time.monotonic()
                if not exhausted:
                    exhausted = not self.step(started)
                self.publisher.flush(self.config.mqtt.resend_after_s)
                if started >= next_heartbeat:
                    self.publisher.heartbeat(self._heartbeat())
                    next_heartbeat = started + self.config.heartbeat_s
                if ping_every is not None and started >= next_ping:
                    watchdog.watchdog_ping()
                    next_ping = started + ping_every
                if exhausted and exit_when_drained and self.outbox.depth() == 0:
                    log.info("source exhausted and every event acknowledged; exiting")
                    break
                stop.wait(max(0.0, min_interval - (time.monotonic() - started)))
        finally:
            watchdog.stopping()
            self.publisher.stop()
            self._close()
        return 0

    def _close(self) -> None:
        for closeable in (self._source, self.reader, self._qr):
            if closeable is not None:
                closeable.close()
        if self._display is not None:
            self._display[1].stop()
        self.feedback.close()  # leaves the turnstile relay closed
        self.outbox.close()

    def _housekeeping(self, stop: threading.Event) -> None:
        next_purge = 0.0
        while not stop.wait(self.config.server.gallery_refresh_s):
            self._sync.sync_once()
            if time.monotonic() >= next_purge:
                removed = self.evidence.purge()
                if removed:
                    log.info("evidence retention: removed %d snapshot(s)", removed)
                next_purge = time.monotonic() + PURGE_EVERY_S

    def _heartbeat(self) -> bytes:
        disk_free_mb = shutil.disk_usage(self.config.state_dir).free / 2**20
        return build_heartbeat(
            outbox_depth=self.outbox.depth(),
            clock_synced=clock_synced(self.config.clock.sync_check),
            cpu_temp_c=cpu_temp_c(),
            disk_free_mb=round(disk_free_mb, 1),
            version=VERSION,
            monotonic_s=round(time.monotonic(), 3),
            boot_id=boot_id(),
            alarms=[f"{key}: {message}"[:200] for key, message in sorted(self.alarms.items())][:10],
        )
