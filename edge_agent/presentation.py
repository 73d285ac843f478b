"""One person at the gate across several frames: consensus, liveness and a single final outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.decision import Decision, consensus

LivenessState = Literal["not_checked", "pending", "pass", "fail"]


class PresentationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    consensus_frames: int = Field(default=2, ge=1, le=10, description="frames that must accept the same guard")
    max_frames: int = Field(default=8, ge=1, le=60, description="frames examined before giving up")
    max_duration_s: float = Field(default=5.0, gt=0.0, le=60.0, description="time before giving up")
    gap_s: float = Field(default=1.0, ge=0.0, le=30.0, description="no face this long ends a presentation")
    # After an outcome, the same person is still standing there: wait for a gap or this long.
    settle_s: float = Field(default=3.0, ge=0.0, le=60.0)


@dataclass(frozen=True)
class Outcome:
    """The single result of a presentation; ``decision`` is the representative frame's decision."""

    accepted: bool
    decision: Decision
    frames: int
    liveness: Literal["not_checked", "pass", "fail"]
    reason: str  # "match", "no_consensus", "borderline", "unknown", "liveness_failed"


@dataclass
class _Current:
    started_at: float
    last_face_at: float
    decisions: list[Decision] = field(default_factory=list)
    liveness: LivenessState = "not_checked"


class PresentationTracker:
    """Feed it every frame; it returns an Outcome exactly once per presentation.

    Call ``expire`` before ``observe`` with a face, so a presentation left by a guard who walked away
    is closed before the next person's frame starts a new one.
    """

    def __init__(self, config: PresentationConfig):
        self._cfg = config
        self._current: _Current | None = None
        self._settled_until: float | None = None
        self._last_face_at: float | None = None

    @property
    def active(self) -> bool:
        return self._current is not None

    def observe(self, t: float, decision: Decision | None, liveness: LivenessState = "not_checked") -> Outcome | None:
        """``decision`` is None for a frame without a usable face."""
        if decision is None:
            return self.expire(t)
        gap = self._last_face_at is None or t - self._last_face_at >= self._cfg.gap_s
        self._last_face_at = t
        if self._settled_until is not None:
            if not gap and t < self._settled_until:
                return None
            self._settled_until = None
        if self._current is None:
            self._current = _Current(started_at=t, last_face_at=t)
        current = self._current
        current.decisions.append(decision)
        current.last_face_at = t
        current.liveness = liveness

        if liveness == "fail":
            best = self._best(current)
            best = _near_miss(best) if best.outcome == "accept" else best
            return self._finish(t, best, accepted=False, liveness="fail", reason="liveness_failed")
        agreed = consensus(current.decisions, self._cfg.consensus_frames)
        if agreed is not None and liveness != "pending":
            return self._finish(t, agreed, accepted=True, liveness=liveness, reason="match")
        if len(current.decisions) >= self._cfg.max_frames or t - current.started_at >= self._cfg.max_duration_s:
            return self._give_up(t, liveness)
        return None

    def expire(self, t: float) -> Outcome | None:
        """Close the presentation if no face has been seen for ``gap_s``."""
        current = self._current
        if current is None or t - current.last_face_at < self._cfg.gap_s:
            return None
        return self._give_up(t, current.liveness)

    def end(self, t: float) -> Outcome | None:
        """Close whatever is open now (the source ended, or a card window ran out)."""
        return self._give_up(t, self._current.liveness) if self._current is not None else None

    def _give_up(self, t: float, liveness: LivenessState) -> Outcome:
        current = self._current
        assert current is not None
        final = "not_checked" if liveness == "not_checked" else ("pass" if liveness == "pass" else "fail")
        agreed = consensus(current.decisions, self._cfg.consensus_frames)
        if agreed is not None:
            # Recognised, but the liveness challenge never completed: a possible photo or screen.
            return self._finish(t, _near_miss(agreed), accepted=False, liveness=final, reason="liveness_failed")
        best = self._best(current)
        if best.outcome == "accept":
            # Some frames accepted, but not enough of them agreed: a near miss for a supervisor to review.
            return self._finish(t, _near_miss(best), accepted=False, liveness=final, reason="no_consensus")
        return self._finish(t, best, accepted=False, liveness=final, reason=best.outcome)

    @staticmethod
    def _best(current: _Current) -> Decision:
        return min(current.decisions, key=lambda d: float("inf") if d.distance is None else d.distance)

    def _finish(self, t: float, decision: Decision, *, accepted: bool, liveness, reason: str) -> Outcome:
        frames = len(self._current.decisions) if self._current else 0
        self._current = None
        self._settled_until = t + self._cfg.settle_s if self._cfg.settle_s > 0 else None
        return Outcome(accepted=accepted, decision=decision, frames=frames, liveness=liveness, reason=reason)


def _near_miss(decision: Decision) -> Decision:
    return Decision("borderline", None, decision.guard_id or decision.candidate_id, decision.distance, decision.margin)
