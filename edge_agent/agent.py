"""Composition root of the terminal: source -> faces -> decision -> outbox -> MQTT, plus gallery sync."""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from biometrics.faces import FaceEncoder
from edge_agent.clock import clock_synced
from edge_agent.config import AgentConfig
from edge_agent.decision import Decision, decide
from edge_agent.gallery import GalleryStore, GallerySync
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.sources import Frame, FrameSource, open_source
from protocol.events import build_event, build_heartbeat

log = logging.getLogger("guardpost.agent")
VERSION = "0.1.0"


def cpu_temp_c() -> float | None:
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None


class Agent:
    def __init__(self, config: AgentConfig, source: FrameSource | None = None):
        self.config = config
        self._secret = config.secret()
        state = config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(state / "outbox.sqlite3")
        self.gallery = GalleryStore(state / "gallery.enc", config.gallery_key(), config.site_id)
        self._sync = GallerySync(
            self.gallery, config.server.url, config.device_id, self._secret, config.server.timeout_s
        )
        self.publisher = Publisher(
            config.device_id, config.site_id, config.mqtt.url, self.outbox, config.mqtt.keepalive_s
        )
        self._source = source or open_source(config.source.spec, loop=config.source.loop)
        self._encoder = FaceEncoder(detect_width=config.recognition.detect_width)
        self._evidence_dir = state / "evidence"
        self._evidence_dir.mkdir(exist_ok=True)
        self._last_seen: dict[str | None, float] = {}

    # -- one presentation at the gate ------------------------------------------------------------
    def process_frame(self, frame: Frame) -> dict[str, Any] | None:
        """Verify the largest face in ``frame``; returns the stored event, or None when nothing happened."""
        found = self._encoder.largest_face(frame.rgb)
        if found is None:
            return None
        _box, probe = found
        rc = self.config.recognition
        decision = decide(probe, self.gallery.current.templates, rc.threshold, rc.min_margin, rc.borderline_threshold)
        key = decision.guard_id or decision.candidate_id
        now = time.monotonic()
        if key in self._last_seen and now - self._last_seen[key] < rc.cooldown_s:
            return None
        self._last_seen[key] = now
        evidence = self._keep_evidence(frame)
        event = self.outbox.append(lambda seq: self._build(seq, decision, evidence))
        log.info(
            "%s %s (distance %s) -> outbox seq %s",
            event["type"],
            decision.guard_id or decision.outcome,
            _fmt(decision.distance),
            event["seq"],
        )
        return event

    def _build(self, seq: int, decision: Decision, evidence_sha256: str) -> dict[str, Any]:
        accepted = decision.outcome == "accept"
        return build_event(
            secret=self._secret,
            device_id=self.config.device_id,
            site_id=self.config.site_id,
            seq=seq,
            type=self.config.event_type if accepted else "denied",
            method="face",
            guard_id=decision.guard_id if accepted else None,
            candidate_guard_id=None if accepted else decision.candidate_id,
            captured_at=datetime.now(UTC),
            clock_synced=clock_synced(self.config.clock.sync_check),
            monotonic_s=time.monotonic(),
            match={
                "distance": None if decision.distance is None else round(decision.distance, 4),
                "margin": None if decision.margin is None else round(decision.margin, 4),
                "frames": 1,
                "liveness": "not_checked",
            },
            evidence_sha256=evidence_sha256,
        )

    def _keep_evidence(self, frame: Frame) -> str:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        data = jpeg.tobytes() if ok else np.ascontiguousarray(frame.rgb).tobytes()
        digest = hashlib.sha256(data).hexdigest()
        (self._evidence_dir / f"{digest}.jpg").write_bytes(data)
        return digest

    # -- the loop --------------------------------------------------------------------------------
    def run(self, stop: threading.Event, exit_when_drained: bool = False) -> int:
        self.publisher.start()
        self._sync.sync_once()
        sync_thread = threading.Thread(target=self._sync_loop, args=(stop,), name="gallery-sync", daemon=True)
        sync_thread.start()
        min_interval = 1.0 / self.config.source.max_fps
        next_heartbeat = 0.0
        exhausted = False
        try:
            while not stop.is_set():
                started = time.monotonic()
                if not exhausted:
                    frame = self._source.read()
                    if frame is None and not self.config.source.spec.startswith("camera:"):
                        exhausted = not self.config.source.loop
                    elif frame is not None:
                        self.process_frame(frame)
                self.publisher.flush(self.config.mqtt.resend_after_s)
                if started >= next_heartbeat:
                    self.publisher.heartbeat(self._heartbeat())
                    next_heartbeat = started + self.config.heartbeat_s
                if exhausted and exit_when_drained and self.outbox.depth() == 0:
                    log.info("source exhausted and every event acknowledged; exiting")
                    break
                stop.wait(max(0.0, min_interval - (time.monotonic() - started)))
        finally:
            self.publisher.stop()
            self._source.close()
            self.outbox.close()
        return 0

    def _sync_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.server.gallery_refresh_s):
            self._sync.sync_once()

    def _heartbeat(self) -> bytes:
        return build_heartbeat(
            outbox_depth=self.outbox.depth(),
            clock_synced=clock_synced(self.config.clock.sync_check),
            cpu_temp_c=cpu_temp_c(),
            disk_free_mb=round(shutil.disk_usage(self.config.state_dir).free / 2**20, 1),
            version=VERSION,
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
