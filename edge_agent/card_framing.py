"""Raw reader output to card-number text: STX/ETX or CR/LF framed bytes, and keyboard-wedge key names."""

from __future__ import annotations

from string import ascii_uppercase, digits
from typing import Any

from protocol.cards import MAX_CARD_LENGTH

STX, ETX = 0x02, 0x03
MAX_RECORD_BYTES = 256  # anything longer without a terminator is line noise, not a card


class RecordSplitter:
    """Bytes to records: CR, LF or ETX end one; STX starts a fresh one (RFID framing)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[str]:
        records: list[str] = []
        for byte in data:
            if byte == STX:
                self._buffer.clear()
                self._overflow = False
            elif byte in (ETX, 0x0A, 0x0D):
                if self._buffer and not self._overflow:
                    records.append(self._buffer.decode("utf-8", errors="replace"))
                self._buffer.clear()
                self._overflow = False
            elif not self._overflow:
                self._buffer.append(byte)
                if len(self._buffer) > MAX_RECORD_BYTES:
                    self._buffer.clear()
                    self._overflow = True
        return records


class WedgeLineAssembler:
    """Key names from a keyboard-wedge reader (``KEY_G``, ``KEY_2``, ...) to a line, complete at Enter."""

    _CHARS = (
        {f"KEY_{c}": c for c in ascii_uppercase + digits}
        | {f"KEY_KP{d}": d for d in digits}
        | {"KEY_MINUS": "-", "KEY_KPMINUS": "-"}
    )
    _ENTER = frozenset({"KEY_ENTER", "KEY_KPENTER"})

    def __init__(self) -> None:
        self._chars: list[str] = []

    def feed(self, keycode_name: str) -> str | None:
        """The typed line when ``keycode_name`` is Enter, else None; shift and other keys are ignored."""
        if keycode_name in self._ENTER:
            line, self._chars = "".join(self._chars), []
            return line or None
        char = self._CHARS.get(keycode_name)
        # One past the limit is enough for normalise_card_number to refuse the line as too long.
        if char is not None and len(self._chars) <= MAX_CARD_LENGTH:
            self._chars.append(char)
        return None

    @classmethod
    def knows(cls, keycode_name: str) -> bool:
        return keycode_name in cls._CHARS or keycode_name in cls._ENTER


def key_name(names: Any) -> str:
    """evdev names some codes with a list of aliases; pick the one the assembler understands."""
    candidates = names if isinstance(names, list | tuple) else [names]
    return next((n for n in candidates if isinstance(n, str) and WedgeLineAssembler.knows(n)), "")
