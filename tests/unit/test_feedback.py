"""Gate feedback: verdicts, the fan-out hub, and the relay/buzzer actuators with their fakes."""

from __future__ import annotations

import sys
import time
import types

import pytest
from pydantic import ValidationError

from edge_agent.feedback import NOT_RECOGNISED, FeedbackHub, RecordingFeedback, Verdict
from edge_agent.gpio import (
    GPIOZERO_MISSING,
    FakeBuzzer,
    FakeRelay,
    GateActuators,
    GpioConfig,
    GpiozeroBuzzer,
    GpiozeroRelay,
    build_actuators,
)

OPEN_S = 0.05
BEEP = 0.01


def wait_for(condition, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def gate():
    relay, buzzer = FakeRelay(), FakeBuzzer()
    actuators = GateActuators(relay, buzzer, relay_open_s=OPEN_S, beep_s=BEEP, beep_gap_s=BEEP)
    yield actuators, relay, buzzer
    actuators.close()


def test_verdicts_speak_to_the_guard():
    welcome = Verdict.accepted("Grace Hopper")
    assert (welcome.outcome, welcome.title) == ("accepted", "Grace Hopper")
    assert welcome.message == "Welcome, Grace Hopper. Check-in recorded."
    assert Verdict.accepted("Grace Hopper", "check_out").message == "Welcome, Grace Hopper. Check-out recorded."
    denied = Verdict.denied()
    assert (denied.outcome, denied.title, denied.message) == ("denied", "Not recognised", NOT_RECOGNISED)
    assert denied.message == "Not recognised. Please use your card or call the supervisor."
    assert Verdict.prompt("Please step closer").title == "Please step closer"
    assert abs(Verdict.idle().at - time.time()) < 5


class Broken:
    def show(self, verdict: Verdict) -> None:
        raise RuntimeError("display cable pulled")

    def close(self) -> None:
        raise RuntimeError("still broken")


def test_hub_fans_out_and_one_broken_output_does_not_silence_the_rest(caplog):
    first, last = RecordingFeedback(), RecordingFeedback()
    hub = FeedbackHub([first, Broken()])
    hub.add(last)
    verdict = Verdict.accepted("Eileen Collins")
    hub.show(verdict)
    assert first.verdicts == [verdict] and last.last is verdict
    assert "display cable pulled" in caplog.text
    hub.close()
    assert first.closed and last.closed
    assert len(hub.outputs) == 3


def test_accepted_pulses_the_relay_once_for_relay_open_s_and_beeps_once(gate):
    actuators, relay, buzzer = gate
    actuators.show(Verdict.accepted("Grace Hopper"))
    assert relay.is_open, "show() returns while the turnstile is still open: it does not wait for the pulse"
    wait_for(lambda: not relay.is_open and not buzzer.is_on)
    [pulse] = relay.pulses
    assert OPEN_S <= pulse.duration < OPEN_S + 1.0
    [beep] = buzzer.pulses
    assert beep.duration >= BEEP


def test_denied_never_opens_the_relay_and_beeps_twice(gate):
    actuators, relay, buzzer = gate
    actuators.show(Verdict.denied())
    wait_for(lambda: len(buzzer.pulses) == 2 and not buzzer.is_on)
    time.sleep(OPEN_S)
    assert relay.pulses == [] and not relay.is_open
    first, second = buzzer.pulses
    assert second.start > first.end


def test_prompt_and_idle_do_nothing(gate):
    actuators, relay, buzzer = gate
    actuators.show(Verdict.prompt("Please blink"))
    actuators.show(Verdict.idle())
    assert relay.pulses == [] and buzzer.pulses == []


def test_a_second_accept_while_open_extends_the_opening():
    # Longer than the other tests' pulses: the second accept must land while the first is surely still open.
    relay, open_s = FakeRelay(), 1.0
    actuators = GateActuators(relay, None, relay_open_s=open_s)
    actuators.show(Verdict.accepted("Grace Hopper"))
    time.sleep(open_s * 0.3)
    actuators.show(Verdict.accepted("Eileen Collins"))
    wait_for(lambda: not relay.is_open, timeout=10)
    [pulse] = relay.pulses
    assert pulse.duration >= open_s * 1.25
    actuators.close()


def test_close_cancels_pending_pulses_and_leaves_the_relay_closed():
    relay, buzzer = FakeRelay(), FakeBuzzer()
    actuators = GateActuators(relay, buzzer, relay_open_s=OPEN_S, beep_s=BEEP, beep_gap_s=BEEP)
    actuators.show(Verdict.accepted("Grace Hopper"))
    actuators.show(Verdict.denied())
    actuators.close()
    assert not relay.is_open and not buzzer.is_on and relay.closed and buzzer.closed
    time.sleep(OPEN_S * 2)  # no timer may fire after close
    assert len(relay.pulses) == 1 and not relay.is_open
    actuators.show(Verdict.accepted("Grace Hopper"))
    assert len(relay.pulses) == 1, "a closed gate ignores verdicts"


def test_actuators_work_without_a_buzzer_or_without_a_relay():
    relay = FakeRelay()
    only_relay = GateActuators(relay, None, relay_open_s=OPEN_S)
    only_relay.show(Verdict.denied())
    only_relay.show(Verdict.accepted("Grace Hopper"))
    only_relay.close()
    assert len(relay.pulses) == 1 and not relay.is_open
    buzzer = FakeBuzzer()
    only_buzzer = GateActuators(None, buzzer, beep_s=BEEP)
    only_buzzer.show(Verdict.accepted("Grace Hopper"))
    only_buzzer.close()
    assert len(buzzer.pulses) == 1


def test_gpiozero_missing_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiozero", None)  # makes `import gpiozero` raise ImportError
    with pytest.raises(ValueError, match="^gpiozero is not installed: pip install gpiozero \\(Raspberry Pi only\\)$"):
        GpiozeroRelay(17)
    with pytest.raises(ValueError, match=GPIOZERO_MISSING.split(":")[0]):
        GpiozeroBuzzer(27)
    with pytest.raises(ValueError, match=GPIOZERO_MISSING.split(":")[0]):
        build_actuators(GpioConfig(backend="gpiozero", buzzer_pin=27))


class _Device:
    """Stands in for gpiozero's output devices, recording how they are driven."""

    made: list[_Device] = []

    def __init__(self, pin: int, active_high: bool = True, initial_value: bool = False) -> None:
        self.pin, self.active_high, self.initial_value = pin, active_high, initial_value
        self.calls: list[str] = []
        _Device.made.append(self)

    def on(self) -> None:
        self.calls.append("on")

    def off(self) -> None:
        self.calls.append("off")

    def close(self) -> None:
        self.calls.append("close")


def test_gpiozero_backends_drive_the_pins(monkeypatch):
    _Device.made = []
    fake = types.ModuleType("gpiozero")
    fake.DigitalOutputDevice = _Device
    fake.Buzzer = _Device
    monkeypatch.setitem(sys.modules, "gpiozero", fake)
    actuators = build_actuators(
        GpioConfig(backend="gpiozero", relay_pin=17, buzzer_pin=27, relay_active_high=False, relay_open_s=0.5)
    )
    relay, buzzer = _Device.made
    assert (relay.pin, relay.active_high, relay.initial_value) == (17, False, False)
    assert (buzzer.pin, buzzer.initial_value) == (27, False)
    actuators.show(Verdict.accepted("Grace Hopper"))
    assert relay.calls == ["on"] and buzzer.calls == ["on"]
    actuators.close()
    assert relay.calls[-2:] == ["off", "close"] and buzzer.calls[-2:] == ["off", "close"]


def test_a_pin_gpiozero_refuses_is_one_clear_line(monkeypatch):
    class Busy(_Device):
        def __init__(self, pin: int, **options) -> None:
            raise RuntimeError(f"pin GPIO{pin} is already in use")

    fake = types.ModuleType("gpiozero")
    fake.DigitalOutputDevice = Busy
    monkeypatch.setitem(sys.modules, "gpiozero", fake)
    with pytest.raises(ValueError, match="^the relay on GPIO17 cannot be set up: pin GPIO17 is already in use; "):
        GpiozeroRelay(17)


def test_gpio_config_bounds_and_defaults():
    assert GpioConfig().backend == "none" and build_actuators(GpioConfig()) is None
    assert GpioConfig().relay_open_s == 3.0
    for bad in ({"relay_pin": 28}, {"relay_open_s": 0.1}, {"relay_open_s": 31}, {"backend": "rpi"}, {"pins": 1}):
        with pytest.raises(ValidationError):
            GpioConfig(**bad)
    with pytest.raises(ValidationError, match="needs relay_pin"):
        GpioConfig(backend="gpiozero")
    with pytest.raises(ValidationError, match="different pins"):
        GpioConfig(relay_pin=17, buzzer_pin=17)
    with pytest.raises(ValidationError):
        GpioConfig().relay_open_s = 5  # frozen
    fake = build_actuators(GpioConfig(backend="fake", relay_open_s=0.5))
    assert isinstance(fake.relay, FakeRelay) and isinstance(fake.buzzer, FakeBuzzer) and fake.relay_open_s == 0.5
    fake.close()
