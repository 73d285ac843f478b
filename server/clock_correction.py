"""Pure clock rules: re-date events captured before a terminal's clock was synchronised.

Within one boot a terminal's monotonic clock and its wall clock move together, so one moment when the
wall clock was synchronised (a heartbeat or an event saying ``clock_synced: true``, with ``monotonic_s``
and the same ``boot_id``) dates every other moment of that boot:
``true_time = reference.wall - (reference.monotonic_s - event.monotonic_s)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CLOCK_KIND = "clock_unsynced"
SYNCED, CORRECTED, UNVERIFIED = "synced", "corrected", "unverified"
# A terminal cannot capture an event after the server received it; allow for the terminal's own sync error.
MAX_AHEAD_OF_RECEIPT = timedelta(seconds=5)


@dataclass(frozen=True)
class ClockReference:
    """A moment of one boot when the terminal's wall clock was synchronised; ``wall`` is naive UTC."""

    boot_id: str
    wall: datetime
    monotonic_s: float


@dataclass(frozen=True)
class ClockVerdict:
    """``corrected_at`` is the best known capture time (naive UTC), None while it cannot be verified."""

    status: str
    corrected_at: datetime | None


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def reference(
    *, clock_synced: bool, wall: datetime, boot_id: str | None, monotonic_s: float | None
) -> ClockReference | None:
    """The reference a heartbeat or event gives, if it was sent with a synchronised clock and says when."""
    if not clock_synced or boot_id is None or monotonic_s is None:
        return None
    return ClockReference(boot_id, naive_utc(wall), float(monotonic_s))


def true_time(ref: ClockReference, monotonic_s: float) -> datetime:
    return ref.wall - timedelta(seconds=ref.monotonic_s - monotonic_s)


def nearest(refs: Iterable[ClockReference], boot_id: str, monotonic_s: float) -> ClockReference | None:
    """The reference of the same boot closest in monotonic time: the least drift to correct across."""
    same_boot = [r for r in refs if r.boot_id == boot_id]
    return min(same_boot, key=lambda r: abs(r.monotonic_s - monotonic_s), default=None)


def judge(
    *,
    captured_at: datetime,
    clock_synced: bool,
    boot_id: str | None,
    monotonic_s: float | None,
    received_at: datetime,
    refs: Iterable[ClockReference],
) -> ClockVerdict:
    """Synced events keep their time; unsynced ones are corrected from a same-boot reference or stay unverified."""
    if clock_synced:
        return ClockVerdict(SYNCED, naive_utc(captured_at))
    if boot_id is None or monotonic_s is None:
        return ClockVerdict(UNVERIFIED, None)
    ref = nearest(refs, boot_id, monotonic_s)
    if ref is None:
        return ClockVerdict(UNVERIFIED, None)
    moment = true_time(ref, monotonic_s)
    if moment > naive_utc(received_at) + MAX_AHEAD_OF_RECEIPT:
        return ClockVerdict(UNVERIFIED, None)  # the reference contradicts the server's own clock
    return ClockVerdict(CORRECTED, moment)


def finding_key(device_id: str, boot_id: str | None) -> str:
    """One clock finding per terminal boot; events without a boot id share one per terminal."""
    return f"clock:{device_id}:{boot_id or 'no-boot-id'}"


def finding_detail(device_id: str, boot_id: str | None) -> str:
    boot = f"boot {boot_id}" if boot_id else "a boot that sent no boot id"
    return (
        f"events from {device_id} ({boot}) were captured before its clock was synchronised "
        "and no synchronised heartbeat or event of that boot dates them yet"
    )
