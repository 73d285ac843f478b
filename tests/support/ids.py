"""Valid resident ID numbers (GB 11643) for tests, by sequence number."""

from __future__ import annotations

from protocol.cards import resident_id_check_character


def resident_id(sequence: int, prefix: str = "11010519850312") -> str:
    """``prefix``: the 6-digit region code and the 8-digit birth date."""
    first17 = f"{prefix}{sequence:03d}"
    return first17 + resident_id_check_character(first17)
