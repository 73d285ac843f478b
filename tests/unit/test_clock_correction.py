"""Clock rules: synced events keep their time, unsynced ones are re-dated from a same-boot reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from server.clock_correction import (
    CORRECTED,
    SYNCED,
    UNVERIFIED,
    ClockReference,
    finding_key,
    judge,
    nearest,
    reference,
    true_time,
)

BOOT, OTHER = "0b6f2c1e-9f57-4a39-9a0c-6f1f0c1e2d3a", "1c7a3d2f-0a68-4b4a-8b1d-7a2a1d2f3e4b"
SYNCED_AT = datetime(2026, 11, 24, 8, 0, 0)  # naive UTC, as the database stores it
RECEIVED = SYNCED_AT + timedelta(hours=1)
REF = ClockReference(BOOT, SYNCED_AT, 1000.0)


def facts(**overrides):
    values = {
        "captured_at": datetime(1970, 1, 1, 0, 16, 40, tzinfo=UTC),  # a clock that never synced
        "clock_synced": False,
        "boot_id": BOOT,
        "monotonic_s": 400.0,
        "received_at": RECEIVED,
        "refs": [REF],
    }
    return values | overrides


def test_true_time_counts_back_along_the_monotonic_clock():
    assert true_time(REF, 400.0) == SYNCED_AT - timedelta(seconds=600)
    assert true_time(REF, 1000.5) == SYNCED_AT + timedelta(seconds=0.5)


def test_reference_needs_a_synced_clock_a_boot_and_a_monotonic_time():
    wall = datetime(2026, 11, 24, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    ref = reference(clock_synced=True, wall=wall, boot_id=BOOT, monotonic_s=1000)
    assert ref == ClockReference(BOOT, SYNCED_AT, 1000.0)  # stored as naive UTC
    assert reference(clock_synced=False, wall=wall, boot_id=BOOT, monotonic_s=1000) is None
    assert reference(clock_synced=True, wall=wall, boot_id=None, monotonic_s=1000) is None
    assert reference(clock_synced=True, wall=wall, boot_id=BOOT, monotonic_s=None) is None


def test_nearest_picks_the_same_boot_closest_in_monotonic_time():
    far, near = ClockReference(BOOT, SYNCED_AT, 9000.0), ClockReference(BOOT, SYNCED_AT, 500.0)
    other = ClockReference(OTHER, SYNCED_AT, 400.0)
    assert nearest([far, near, other], BOOT, 400.0) == near
    assert nearest([other], BOOT, 400.0) is None


def test_a_synced_event_keeps_its_own_time():
    verdict = judge(**facts(clock_synced=True, captured_at=datetime(2026, 11, 24, 7, 50, tzinfo=UTC)))
    assert (verdict.status, verdict.corrected_at) == (SYNCED, datetime(2026, 11, 24, 7, 50))


def test_an_unsynced_event_is_corrected_from_a_reference_of_its_boot():
    verdict = judge(**facts())
    assert (verdict.status, verdict.corrected_at) == (CORRECTED, SYNCED_AT - timedelta(seconds=600))


def test_an_unsynced_event_without_a_usable_reference_stays_unverified():
    for overrides in ({"refs": []}, {"boot_id": OTHER}, {"boot_id": None}, {"monotonic_s": None}):
        verdict = judge(**facts(**overrides))
        assert (verdict.status, verdict.corrected_at) == (UNVERIFIED, None), overrides


def test_a_correction_after_the_server_received_the_event_is_refused():
    """A terminal cannot have captured an event after the server got it: the reference is wrong."""
    late = ClockReference(BOOT, RECEIVED + timedelta(minutes=5), 400.0)
    assert judge(**facts(refs=[late])).status == UNVERIFIED
    just_within = ClockReference(BOOT, RECEIVED + timedelta(seconds=4), 400.0)
    assert judge(**facts(refs=[just_within])).status == CORRECTED


def test_one_clock_finding_per_terminal_boot():
    assert finding_key("gate-1", BOOT) == f"clock:gate-1:{BOOT}"
    assert finding_key("gate-1", None) == "clock:gate-1:no-boot-id"
