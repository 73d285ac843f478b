"""The gate's decisions: faces over several frames, cards, face+card, each ending in one Recording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from biometrics.faces import FaceBox, FaceEncoder
from biometrics.landmarks import Landmarks, face_landmarks
from edge_agent.card_match import find_card_holder, verify_one_to_one
from edge_agent.decision import Decision, decide
from edge_agent.feedback import NOT_RECOGNISED, Verdict
from edge_agent.liveness import AntiSpoof, LivenessConfig, start_challenge
from edge_agent.presentation import LivenessState, Outcome, PresentationConfig, PresentationTracker
from edge_agent.quality import QualityConfig, assess
from edge_agent.readers import CardRead
from edge_agent.sources import Frame
from protocol.gallery import Gallery

Mode = Literal["face", "card", "face_or_card", "face+card"]
CARD_ALTERNATIVE = "Please use your card or call the supervisor."


@dataclass(frozen=True)
class Recording:
    """One event to store and the verdict to show; ``frame`` is the evidence snapshot, if any."""

    type: str
    method: str
    guard_id: str | None
    candidate_id: str | None
    match: dict[str, Any] | None
    card_masked: str | None
    frame: Frame | None
    verdict: Verdict


@dataclass(frozen=True)
class GateRules:
    mode: Mode
    event_type: str
    threshold: float
    min_margin: float
    borderline_threshold: float
    cooldown_s: float
    card_window_s: float
    presentation: PresentationConfig
    quality: QualityConfig
    liveness: LivenessConfig


@dataclass
class _CardWindow:
    holder: str
    read: CardRead
    until: float


class Gate:
    """Stateful across frames (presentations, card windows, cooldowns); all I/O stays with the caller."""

    def __init__(
        self,
        rules: GateRules,
        gallery: Callable[[], Gallery],
        encoder: FaceEncoder,
        antispoof: AntiSpoof | None = None,
        show: Callable[[Verdict], None] = lambda verdict: None,
    ):
        self.rules = rules
        self._gallery, self._encoder, self._antispoof, self._show = gallery, encoder, antispoof, show
        self._tracker = PresentationTracker(rules.presentation)
        self._challenge = None
        self._spoof_scores: list[float] = []
        self._window: _CardWindow | None = None
        self._last_recorded: dict[str, float] = {}
        self._last_frame: Frame | None = None

    @property
    def uses_faces(self) -> bool:
        return self.rules.mode != "card"

    # -- cards ----------------------------------------------------------------------------------
    def on_card(self, read: CardRead, t: float) -> Recording | None:
        gallery = self._gallery()
        holder = find_card_holder(read, gallery)
        mode = self.rules.mode
        if mode == "face":
            self._show(Verdict.prompt("Cards are not used at this gate. Please look at the camera."))
            return None
        if holder is None:
            return self._card_denied(read, None, "Card not recognised. Please call the supervisor.")
        if mode in ("card", "face_or_card"):
            return self._accept(holder, "card", None, read.number_masked, self._last_frame, t)
        if holder not in gallery.templates:
            return self._card_denied(read, holder, "No face on file for this card. Please call the supervisor.")
        self._window = _CardWindow(holder, read, t + self.rules.card_window_s)
        self._tracker = PresentationTracker(self.rules.presentation)  # the card starts a new presentation
        self._reset_liveness()
        self._show(Verdict.prompt("Please look at the camera", gallery.names.get(holder, holder)))
        return None

    def _card_denied(self, read: CardRead, candidate: str | None, message: str) -> Recording:
        verdict = Verdict.denied(message, "Card refused")
        return Recording("denied", "card", None, candidate, None, read.number_masked, self._last_frame, verdict)

    # -- frames ---------------------------------------------------------------------------------
    def on_frame(self, frame: Frame, t: float) -> list[Recording]:
        """Zero, one or (a walked-away presentation closing as the next begins) two recordings."""
        self._last_frame = frame
        if not self.uses_faces or (self.rules.mode == "face+card" and self._window is None):
            return []
        stale = self._finish(self._tracker.expire(t), frame, t)
        box = self._encoder.detect_largest(frame.rgb)
        if box is None:
            return _present(stale)
        landmarks = face_landmarks(frame.rgb, box)
        quality = assess(frame.rgb, box, landmarks, self.rules.quality)
        if not quality.ok:
            self._show(Verdict.prompt(quality.message or "Please face the camera"))
            return _present(stale)
        if not self._tracker.active:
            self._reset_liveness()
        liveness = self._liveness(frame.rgb, box, landmarks, t)
        decision = self._decide(self._encoder.encode(frame.rgb, box))
        outcome = self._tracker.observe(t, decision, liveness)
        if outcome is None and liveness == "pending" and self._challenge is not None:
            self._show(Verdict.prompt(self._challenge.prompt))
        return _present(stale, self._finish(outcome, frame, t))

    def tick(self, t: float) -> Recording | None:
        """Close a face+card window that ran out without a face decision."""
        window = self._window
        if window is None or t < window.until:
            return None
        outcome = self._tracker.end(t)
        if outcome is None:
            self._window = None
            return self._card_denied(window.read, window.holder, "Face not confirmed. " + CARD_ALTERNATIVE)
        return self._finish(outcome, self._last_frame, t)

    def end(self, t: float) -> Recording | None:
        """The source ended: whoever was at the gate gets their outcome now."""
        return self._finish(self._tracker.end(t), self._last_frame, t)

    def _decide(self, probe: np.ndarray) -> Decision:
        r = self.rules
        if self._window is None:
            return decide(probe, self._gallery().templates, r.threshold, r.min_margin, r.borderline_threshold)
        holder = self._window.holder
        accepted, distance = verify_one_to_one(probe, self._gallery().templates[holder], r.threshold)
        if accepted:
            return Decision("accept", holder, holder, distance, None)
        return Decision("borderline" if distance <= r.borderline_threshold else "unknown", None, holder, distance, None)

    def _reset_liveness(self) -> None:
        self._challenge = start_challenge(self.rules.liveness)
        self._spoof_scores = []

    def _liveness(self, rgb: np.ndarray, box: FaceBox, landmarks: Landmarks, t: float) -> LivenessState:
        states: list[str] = []
        if self._challenge is not None:
            states.append(self._challenge.update(t, landmarks))
        if self._antispoof is not None:
            # The mean over the presentation: one odd frame of a real face must not refuse the guard.
            self._spoof_scores.append(self._antispoof.real_score(rgb, box))
            mean = sum(self._spoof_scores) / len(self._spoof_scores)
            ok = mean >= self.rules.liveness.antispoof_min_real
            states.append("pass" if ok else ("fail" if len(self._spoof_scores) >= 2 else "pending"))
        if not states:
            return "not_checked"
        if "fail" in states:
            return "fail"
        return "pending" if "pending" in states else "pass"

    # -- outcomes -------------------------------------------------------------------------------
    def _finish(self, outcome: Outcome | None, frame: Frame | None, t: float) -> Recording | None:
        if outcome is None:
            return None
        window, self._window = self._window, None
        decision = outcome.decision
        match = {
            "distance": None if decision.distance is None else round(decision.distance, 4),
            "margin": None if decision.margin is None else round(decision.margin, 4),
            "frames": max(outcome.frames, 1),
            "liveness": outcome.liveness,
        }
        method = "face+card" if window is not None else "face"
        card = window.read.number_masked if window is not None else None
        if outcome.accepted and decision.guard_id is not None:
            return self._accept(decision.guard_id, method, match, card, frame, t)
        message = "Could not confirm a live face. " if outcome.reason == "liveness_failed" else ""
        if self.rules.mode in ("face_or_card", "face+card"):
            message += NOT_RECOGNISED if not message else CARD_ALTERNATIVE
        else:
            message += "Please call the supervisor." if message else "Not recognised. Please call the supervisor."
        candidate = decision.candidate_id if decision.outcome == "borderline" or window is not None else None
        return Recording("denied", method, None, candidate, match, card, frame, Verdict.denied(message))

    def _accept(
        self, guard_id: str, method: str, match: dict | None, card: str | None, frame: Frame | None, t: float
    ) -> Recording | None:
        name = self._gallery().names.get(guard_id) or guard_id
        last = self._last_recorded.get(guard_id)
        if last is not None and t - last < self.rules.cooldown_s:
            # Still standing at the gate after being recorded: greet again, record nothing new.
            self._show(Verdict("accepted", name, f"{name}, you are already recorded."))
            return None
        self._last_recorded[guard_id] = t
        verdict = Verdict.accepted(name, self.rules.event_type)
        return Recording(self.rules.event_type, method, guard_id, None, match, card, frame, verdict)


def _present(*recordings: Recording | None) -> list[Recording]:
    return [r for r in recordings if r is not None]
