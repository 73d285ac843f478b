"""What the guard sees and hears at the gate: a verdict, shown on every configured output."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

log = logging.getLogger("guardpost.agent.feedback")

Outcome = Literal["accepted", "denied", "prompt", "idle"]

NOT_RECOGNISED = "Not recognised. Please use your card or call the supervisor."

# Spoken-word phrasing per recorded event type, so a guard checking out is not told "check-in".
_RECORDED = {"check_in": "Check-in recorded.", "check_out": "Check-out recorded.", "patrol": "Patrol point recorded."}


@dataclass(frozen=True)
class Verdict:
    """One thing to tell the guard; ``at`` is wall-clock time (time.time()) when it was decided."""

    outcome: Outcome
    title: str
    message: str
    at: float = field(default_factory=time.time)

    @classmethod
    def accepted(cls, name: str, event_type: str = "check_in") -> Verdict:
        return cls("accepted", name, f"Welcome, {name}. {_RECORDED.get(event_type, 'Recorded.')}")

    @classmethod
    def denied(cls, message: str = NOT_RECOGNISED, title: str = "Not recognised") -> Verdict:
        return cls("denied", title, message)

    @classmethod
    def prompt(cls, message: str, title: str = "") -> Verdict:
        return cls("prompt", title or message, message)

    @classmethod
    def idle(cls) -> Verdict:
        return cls("idle", "", "")


class Feedback(Protocol):
    def show(self, verdict: Verdict) -> None:
        """Tell the guard; must return quickly (the capture loop calls it)."""


@runtime_checkable
class _Closeable(Protocol):
    def close(self) -> None: ...


class FeedbackHub:
    """Fans a verdict out to several outputs; one broken output does not silence the others."""

    def __init__(self, outputs: Iterable[Feedback] = ()) -> None:
        self._outputs: list[Feedback] = list(outputs)

    def add(self, output: Feedback) -> None:
        self._outputs.append(output)

    @property
    def outputs(self) -> tuple[Feedback, ...]:
        return tuple(self._outputs)

    def show(self, verdict: Verdict) -> None:
        for output in self._outputs:
            try:
                output.show(verdict)
            except Exception:
                # A dead buzzer must not stop the turnstile opening or the screen updating.
                log.exception("feedback output %s failed", type(output).__name__)

    def close(self) -> None:
        for output in reversed(self._outputs):
            if isinstance(output, _Closeable):
                try:
                    output.close()
                except Exception:
                    log.exception("closing feedback output %s failed", type(output).__name__)


class RecordingFeedback:
    """A real Feedback that keeps every verdict, for tests and the demo."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: list[Verdict] = []
        self.closed = False

    def show(self, verdict: Verdict) -> None:
        with self._lock:
            self._verdicts.append(verdict)

    @property
    def verdicts(self) -> list[Verdict]:
        with self._lock:
            return list(self._verdicts)

    @property
    def last(self) -> Verdict | None:
        with self._lock:
            return self._verdicts[-1] if self._verdicts else None

    def close(self) -> None:
        self.closed = True
