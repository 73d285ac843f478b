"""Gate actuators on GPIO: the turnstile relay and the buzzer, driven by verdicts without blocking."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.feedback import Verdict

log = logging.getLogger("guardpost.agent.gpio")

GPIOZERO_MISSING = "gpiozero is not installed: pip install gpiozero (Raspberry Pi only)"
BEEP_S = 0.12
BEEP_GAP_S = 0.1


class Relay(Protocol):
    def set_open(self, is_open: bool) -> None:
        """Energise (True: turnstile released) or de-energise (False: locked)."""

    def close(self) -> None:
        """Free the pin, leaving the relay de-energised."""


class Buzzer(Protocol):
    def set_on(self, on: bool) -> None: ...

    def close(self) -> None: ...


@dataclass
class Pulse:
    start: float  # time.monotonic()
    end: float | None = None  # None while still on

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


class _FakeOutput:
    """Records on/off changes as pulses with monotonic timestamps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pulses: list[Pulse] = []
        self.closed = False

    def _set(self, on: bool) -> None:
        with self._lock:
            current = self._pulses[-1] if self._pulses and self._pulses[-1].end is None else None
            if on and current is None:
                self._pulses.append(Pulse(time.monotonic()))
            elif not on and current is not None:
                current.end = time.monotonic()

    @property
    def pulses(self) -> list[Pulse]:
        with self._lock:
            return [Pulse(p.start, p.end) for p in self._pulses]

    @property
    def is_on(self) -> bool:
        with self._lock:
            return bool(self._pulses) and self._pulses[-1].end is None

    def close(self) -> None:
        self._set(False)
        self.closed = True


class FakeRelay(_FakeOutput):
    def set_open(self, is_open: bool) -> None:
        self._set(is_open)

    @property
    def is_open(self) -> bool:
        return self.is_on


class FakeBuzzer(_FakeOutput):
    def set_on(self, on: bool) -> None:
        self._set(on)


def _output_device(kind: str, what: str, pin: int, **options: Any) -> Any:
    """A gpiozero output device, or ValueError with one line saying what to check."""
    try:
        # Imported here, not at the top: gpiozero exists only on a Pi and the package must import anywhere.
        import gpiozero
    except ImportError:
        raise ValueError(GPIOZERO_MISSING) from None
    try:
        return getattr(gpiozero, kind)(pin, initial_value=False, **options)
    except Exception as exc:  # gpiozero raises its own hierarchy, lgpio and OS errors alike
        raise ValueError(
            f"{what} on GPIO{pin} cannot be set up: {exc}; check the pin, that the user is in the gpio group "
            "and that lgpio is installed"
        ) from None


class GpiozeroRelay:
    """A relay module on a BCM pin; ``active_high=False`` for the common low-triggered boards."""

    def __init__(self, pin: int, active_high: bool = True) -> None:
        self._device = _output_device("DigitalOutputDevice", "the relay", pin, active_high=active_high)

    def set_open(self, is_open: bool) -> None:
        if is_open:
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        self._device.off()
        self._device.close()


class GpiozeroBuzzer:
    """An active buzzer (it sounds when powered) on a BCM pin."""

    def __init__(self, pin: int) -> None:
        self._device = _output_device("Buzzer", "the buzzer", pin)

    def set_on(self, on: bool) -> None:
        if on:
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        self._device.off()
        self._device.close()


class _Sequencer:
    """Plays (state, seconds) steps on one output from timer threads; a new pattern replaces the old one."""

    def __init__(self, name: str, apply: Callable[[bool], None]) -> None:
        self._name = name
        self._apply = apply
        self._lock = threading.Lock()
        self._generation = 0
        self._timers: list[threading.Timer] = []
        self._closed = False

    def play(self, steps: Sequence[tuple[bool, float]]) -> None:
        with self._lock:
            if self._closed:
                return
            self._cancel_locked()
            generation, delay = self._generation, 0.0
            for index, (state, seconds) in enumerate(steps):
                if index == 0:
                    self._apply(state)  # a pin write takes microseconds; do the first step now
                else:
                    timer = threading.Timer(delay, self._step, (generation, state))
                    timer.daemon = True
                    self._timers.append(timer)
                    timer.start()
                delay += seconds

    def _step(self, generation: int, state: bool) -> None:
        # The generation check under the lock keeps a cancelled timer from undoing a newer pattern.
        with self._lock:
            if generation != self._generation or self._closed:
                return
            try:
                self._apply(state)
            except Exception:
                log.exception("%s: setting the output to %s failed", self._name, state)

    def _cancel_locked(self) -> None:
        self._generation += 1
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def close(self) -> None:
        with self._lock:
            self._cancel_locked()
            self._closed = True
            self._apply(False)


class GateActuators:
    """A Feedback: accepted opens the turnstile for ``relay_open_s`` and beeps once; denied beeps twice."""

    def __init__(
        self,
        relay: Relay | None,
        buzzer: Buzzer | None,
        relay_open_s: float = 3.0,
        beep_s: float = BEEP_S,
        beep_gap_s: float = BEEP_GAP_S,
    ) -> None:
        self.relay, self.buzzer = relay, buzzer
        self.relay_open_s, self.beep_s, self.beep_gap_s = relay_open_s, beep_s, beep_gap_s
        self._relay = _Sequencer("relay", relay.set_open) if relay is not None else None
        self._buzzer = _Sequencer("buzzer", buzzer.set_on) if buzzer is not None else None

    def show(self, verdict: Verdict) -> None:
        if verdict.outcome == "accepted":
            if self._relay is not None:
                # A second accept while open restarts the window rather than cutting it short.
                self._relay.play([(True, self.relay_open_s), (False, 0.0)])
            self._beep(1)
        elif verdict.outcome == "denied":
            # Never touches the relay: a denial must not close the gate on a guard still passing.
            self._beep(2)

    def _beep(self, times: int) -> None:
        if self._buzzer is None:
            return
        steps: list[tuple[bool, float]] = []
        for _ in range(times):
            steps += [(True, self.beep_s), (False, self.beep_gap_s)]
        self._buzzer.play(steps)

    def close(self) -> None:
        """Cancel pending pulses and leave the relay de-energised (fail-secure: the gate stays shut)."""
        for sequencer, device in ((self._relay, self.relay), (self._buzzer, self.buzzer)):
            if sequencer is None or device is None:
                continue
            try:
                sequencer.close()
            finally:
                device.close()


class GpioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["none", "fake", "gpiozero"] = "none"
    relay_pin: int | None = Field(default=None, ge=0, le=27, description="BCM number of the turnstile relay pin")
    buzzer_pin: int | None = Field(default=None, ge=0, le=27, description="BCM number of the buzzer pin")
    relay_active_high: bool = True
    relay_open_s: float = Field(default=3.0, ge=0.5, le=30.0)

    @model_validator(mode="after")
    def _pins(self) -> GpioConfig:
        if self.backend == "gpiozero" and self.relay_pin is None and self.buzzer_pin is None:
            raise ValueError("backend 'gpiozero' needs relay_pin, buzzer_pin or both")
        if self.relay_pin is not None and self.relay_pin == self.buzzer_pin:
            raise ValueError("relay_pin and buzzer_pin must be different pins")
        return self


def build_actuators(cfg: GpioConfig) -> GateActuators | None:
    """The configured actuators, or None when the gate has none; ValueError if gpiozero is missing."""
    if cfg.backend == "none":
        return None
    if cfg.backend == "fake":
        return GateActuators(FakeRelay(), FakeBuzzer(), cfg.relay_open_s)
    relay = GpiozeroRelay(cfg.relay_pin, cfg.relay_active_high) if cfg.relay_pin is not None else None
    try:
        buzzer = GpiozeroBuzzer(cfg.buzzer_pin) if cfg.buzzer_pin is not None else None
    except BaseException:
        if relay is not None:
            relay.close()
        raise
    return GateActuators(relay, buzzer, cfg.relay_open_s)
