"""Card readers (keyboard wedge, serial RFID, text lines, QR on a camera frame, fake) behind one small interface."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Protocol

import cv2
import numpy as np

from edge_agent.card_framing import RecordSplitter, WedgeLineAssembler, key_name
from protocol.cards import mask_card_number, normalise_card_number

log = logging.getLogger("guardpost.agent.readers")

SPECS = "none, fake, serial:PORT[@BAUD], wedge:/dev/input/by-id/...-event-kbd or lines:PATH"


class ReaderError(ValueError):
    """A card reader that cannot be opened or a spec that names none; one line saying what to check."""


@dataclass(frozen=True)
class CardRead:
    number: str  # normalised
    source: str
    at: float  # time.monotonic() when the read completed

    @property
    def number_masked(self) -> str:
        return mask_card_number(self.number)

    def __repr__(self) -> str:  # a logged read must show only the masked number
        return f"CardRead({self.number_masked!r}, source={self.source!r}, at={self.at:.3f})"


class CardReader(Protocol):
    def poll(self) -> CardRead | None:
        """The next complete read, or None right away when there is none."""

    def close(self) -> None: ...


class _ReadQueue:
    """Normalises raw reads, drops invalid ones, and drops repeats of a card that is still being held.

    RFID readers repeat the number every ~100 ms while a card lies on them, and a QR code stays in view
    for many frames: a number seen again within ``repeat_s`` of its last sighting is the same presentation.
    """

    def __init__(self, source: str, repeat_s: float) -> None:
        self.source, self._repeat_s = source, repeat_s
        # One person presents at a time; a reader spewing records must not grow memory without bound.
        self._queue: deque[CardRead] = deque(maxlen=16)
        self._last: tuple[str, float] | None = None
        self._last_refused = ""

    def offer(self, raw: str) -> CardRead | None:
        now = time.monotonic()
        try:
            number = normalise_card_number(raw)
        except ValueError as exc:
            if raw != self._last_refused:  # a poster's QR code in view must not flood the log
                log.warning("ignored a %s read: %s", self.source, exc)
                self._last_refused = raw
            return None
        repeated = self._last is not None and self._last[0] == number and now - self._last[1] < self._repeat_s
        self._last = (number, now)
        if repeated:
            return None
        read = CardRead(number=number, source=self.source, at=now)
        self._queue.append(read)
        return read

    def pop(self) -> CardRead | None:
        return self._queue.popleft() if self._queue else None


class TextLineReader:
    """Lines from a stream: a FIFO or file (``lines:PATH``), a pipe, or an in-memory buffer in tests."""

    def __init__(self, stream: IO[bytes] | IO[str], source: str = "lines", repeat_s: float = 0.0) -> None:
        self._stream = stream
        self._reads = _ReadQueue(source, repeat_s)
        self._splitter = RecordSplitter()
        try:
            self._fd: int | None = stream.fileno()
            os.set_blocking(self._fd, False)  # poll() must never wait for a writer
        except (AttributeError, OSError, ValueError):
            self._fd = None

    @classmethod
    def open(cls, path: str, repeat_s: float = 0.0) -> TextLineReader:
        try:
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait until a writer appears.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise ReaderError(f"card reader input {path} cannot be opened: {exc.strerror}") from None
        return cls(os.fdopen(fd, "rb", buffering=0), repeat_s=repeat_s)

    def poll(self) -> CardRead | None:
        for record in self._splitter.feed(self._available()):
            self._reads.offer(record)
        return self._reads.pop()

    def _available(self) -> bytes:
        if self._fd is None:
            data = self._stream.read()
            return data.encode("utf-8") if isinstance(data, str) else data or b""
        chunks: list[bytes] = []
        while len(chunks) < 16:  # bounded: a chatty writer must not stall the capture loop
            try:
                chunk = os.read(self._fd, 4096)
            except BlockingIOError:
                break
            if not chunk:  # end of file, or a FIFO with no writer right now
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._stream.close()


class SerialReader:
    """An RFID or barcode reader on a serial port (USB adapters appear as /dev/ttyUSBn or /dev/ttyACMn)."""

    def __init__(self, port: str, baudrate: int = 9600, repeat_s: float = 1.0) -> None:
        try:
            import serial  # vendor library: only terminals with a serial reader need it
        except ImportError:
            raise ReaderError(f"serial card reader {port} needs pyserial: pip install pyserial") from None
        try:
            self._serial = serial.Serial(port, baudrate, timeout=0)  # timeout=0: reads never wait
        except serial.SerialException as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            hint = "is this user in the 'dialout' group?" if exc.errno == 13 else "is it plugged in?"
            raise ReaderError(f"serial card reader {port} cannot be opened: {why}; {hint}") from None
        except ValueError as exc:
            raise ReaderError(f"serial card reader {port}: {exc}") from None
        self._port, self._errors = port, (serial.SerialException, OSError)
        self._reads = _ReadQueue("serial", repeat_s)
        self._splitter = RecordSplitter()
        self._failing = False

    def poll(self) -> CardRead | None:
        try:
            waiting = self._serial.in_waiting
            data = self._serial.read(waiting) if waiting else b""
        except self._errors as exc:
            if not self._failing:  # unplugged: say so once, keep the face path running
                log.error("serial card reader %s stopped answering: %s", self._port, exc)
                self._failing = True
            return self._reads.pop()
        self._failing = False
        for record in self._splitter.feed(data):
            self._reads.offer(record)
        return self._reads.pop()

    def close(self) -> None:
        self._serial.close()


class KeyboardWedgeReader:
    """A reader that types the number and Enter, read from its evdev device so a headless Pi needs no console."""

    def __init__(self, path: str, repeat_s: float = 1.0) -> None:
        try:
            import evdev  # vendor library: Linux only, and only terminals with a wedge reader need it
        except ImportError:
            raise ReaderError(f"keyboard-wedge card reader {path} needs evdev: pip install evdev") from None
        try:
            self._device = evdev.InputDevice(path)
        except OSError as exc:
            raise ReaderError(
                f"keyboard-wedge card reader {path} cannot be opened: {exc.strerror}; "
                "is it plugged in and is this user in the 'input' group?"
            ) from None
        try:
            self._device.grab()  # without the grab every card number is also typed into the console
        except OSError as exc:
            self._device.close()
            raise ReaderError(f"keyboard-wedge card reader {path} is held by another program: {exc.strerror}") from None
        self._path, self._ecodes = path, evdev.ecodes
        self._line = WedgeLineAssembler()
        self._reads = _ReadQueue("wedge", repeat_s)
        self._failing = False

    def poll(self) -> CardRead | None:
        try:
            events = list(self._device.read())
        except BlockingIOError:
            events = []
        except OSError as exc:
            if not self._failing:
                log.error("keyboard-wedge card reader %s stopped answering: %s", self._path, exc.strerror)
                self._failing = True
            return self._reads.pop()
        self._failing = False
        for event in events:
            if event.type == self._ecodes.EV_KEY and event.value == 1:  # key down; 0 is up, 2 auto-repeat
                line = self._line.feed(key_name(self._ecodes.KEY.get(event.code)))
                if line is not None:
                    self._reads.offer(line)
        return self._reads.pop()

    def close(self) -> None:
        try:
            self._device.ungrab()
        except OSError:
            pass  # already gone with the device
        self._device.close()


class QrReader:
    """QR codes on guard certificates, read from the camera frames the face path already captures."""

    def __init__(self, repeat_s: float = 2.0) -> None:
        self._detector = cv2.QRCodeDetector()
        self._reads = _ReadQueue("qr", repeat_s)

    def scan(self, rgb: np.ndarray) -> CardRead | None:
        """The number in a QR code in ``rgb``, or None when there is none or its payload is not a number."""
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        try:
            text, _points, _straight = self._detector.detectAndDecode(gray)
        except cv2.error:
            return None  # OpenCV raises on some degenerate quadrilaterals; that frame simply has no code
        if not text:
            return None
        self._reads.offer(text)
        return self._reads.pop()

    def close(self) -> None:
        pass


class FakeReader:
    """Numbers pushed by a test or the demo, read back like a real reader's (push may come from another thread)."""

    def __init__(self, source: str = "fake") -> None:
        self._reads = _ReadQueue(source, repeat_s=0.0)

    def push(self, raw: str) -> CardRead | None:
        """Queue ``raw`` as if presented now; returns the read, or None when it is not a valid number."""
        return self._reads.offer(raw)

    def poll(self) -> CardRead | None:
        return self._reads.pop()

    def close(self) -> None:
        pass


def open_reader(spec: str) -> CardReader | None:
    """Open ``none``, ``fake``, ``serial:PORT[@BAUD]``, ``wedge:DEVICE`` or ``lines:PATH``."""
    kind, _, target = spec.partition(":")
    if spec == "none":
        return None
    if spec == "fake":
        return FakeReader()
    if kind == "serial" and target:
        port, at, baud = target.rpartition("@")
        if not at:
            return SerialReader(target)
        if not port or not baud.isdigit():
            raise ReaderError(f"serial card reader {spec!r}: write the baud rate as a number, as in serial:PORT@9600")
        return SerialReader(port, int(baud))
    if kind == "wedge" and target:
        return KeyboardWedgeReader(target)
    if kind == "lines" and target:
        return TextLineReader.open(target)
    raise ReaderError(f"unknown card reader {spec!r}: use {SPECS}")
