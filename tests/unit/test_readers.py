"""Card readers: framing, keyboard wedge (with a stand-in evdev), serial over a real pty, text lines, QR, fake."""

from __future__ import annotations

import io
import logging
import os
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.card_framing import MAX_RECORD_BYTES, RecordSplitter, WedgeLineAssembler
from edge_agent.readers import (
    CardRead,
    FakeReader,
    KeyboardWedgeReader,
    QrReader,
    ReaderError,
    SerialReader,
    TextLineReader,
    open_reader,
)

CARD = "GD2024123456"


def poll_all(reader, timeout: float = 2.0, want: int = 1) -> list[CardRead]:
    """Poll until ``want`` reads arrived or ``timeout`` passed (a pty delivers asynchronously)."""
    reads: list[CardRead] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        read = reader.poll()
        if read is not None:
            reads.append(read)
            if len(reads) >= want:
                break
        else:
            time.sleep(0.01)
    while (read := reader.poll()) is not None:
        reads.append(read)
    return reads


def test_card_read_never_shows_the_clear_number() -> None:
    read = CardRead(number=CARD, source="serial", at=1.0)
    assert CARD not in repr(read) and CARD not in str(read)
    assert read.number_masked == "GD******3456"


# -- framing ---------------------------------------------------------------------------------------


def test_wedge_assembler_builds_a_line_until_enter() -> None:
    line = WedgeLineAssembler()
    keys = ["KEY_LEFTSHIFT", "KEY_G", "KEY_D", "KEY_MINUS", "KEY_2", "KEY_KP0", "KEY_SPACE", "KEY_F1", "KEY_4"]
    assert [line.feed(k) for k in keys] == [None] * len(keys)
    assert line.feed("KEY_ENTER") == "GD-204"
    assert line.feed("KEY_KPENTER") is None  # an empty line is no read
    assert line.feed("KEY_7") is None and line.feed("KEY_ENTER") == "7"


def test_wedge_assembler_caps_a_runaway_line() -> None:
    line = WedgeLineAssembler()
    for _ in range(500):
        line.feed("KEY_1")
    assert len(line.feed("KEY_ENTER") or "") == 65  # one past the limit, so normalisation refuses it


def test_record_splitter_handles_rfid_framing_and_line_ends() -> None:
    splitter = RecordSplitter()
    assert splitter.feed(b"\x02GD2024") == []
    assert splitter.feed(b"123456\x03\r\n") == [CARD]
    assert splitter.feed(b"junk\x02CARD-1\x03A\r\nB\rC\n\n") == ["CARD-1", "A", "B", "C"]
    assert splitter.feed(b"x" * (MAX_RECORD_BYTES + 10) + b"\nCARD-2\n") == ["CARD-2"]
    assert splitter.feed("ä\n".encode()) == ["ä"]


# -- text lines --------------------------------------------------------------------------------------


def test_text_line_reader_on_in_memory_streams() -> None:
    reader = TextLineReader(io.BytesIO(b"gd2024123456\r\nCARD-1\n"))
    assert [r.number for r in poll_all(reader, want=2)] == [CARD, "CARD-1"]
    assert all(r.source == "lines" for r in poll_all(TextLineReader(io.StringIO("CARD-2\n"))))


def test_text_line_reader_drops_invalid_lines_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    reader = TextLineReader(io.BytesIO(b"https://example.com/x\nhttps://example.com/x\nCARD-3\n"))
    with caplog.at_level(logging.WARNING, logger="guardpost.agent.readers"):
        assert [r.number for r in poll_all(reader)] == ["CARD-3"]
    assert [r.message for r in caplog.records] == [
        "ignored a lines read: card number contains ':'; only letters A-Z, digits 0-9 and '-' are allowed"
    ]


def test_repeats_within_the_window_are_one_presentation() -> None:
    held = TextLineReader(io.BytesIO(b"CARD-1\nCARD-1\nCARD-1\nCARD-2\nCARD-1\n"), repeat_s=60)
    assert [r.number for r in poll_all(held)] == ["CARD-1", "CARD-2", "CARD-1"]
    every = TextLineReader(io.BytesIO(b"CARD-1\nCARD-1\n"), repeat_s=0)
    assert len(poll_all(every, want=2)) == 2


def test_text_line_reader_on_a_pipe_never_blocks_and_joins_partial_lines() -> None:
    read_fd, write_fd = os.pipe()
    reader = TextLineReader(os.fdopen(read_fd, "rb", buffering=0))
    try:
        started = time.monotonic()
        assert reader.poll() is None and time.monotonic() - started < 0.5
        os.write(write_fd, b"GD2024")
        assert reader.poll() is None
        os.write(write_fd, b"123456\n")
        assert [r.number for r in poll_all(reader)] == [CARD]
    finally:
        reader.close()
        os.close(write_fd)


def test_lines_spec_reads_a_fifo_with_writers_coming_and_going(tmp_path: Path) -> None:
    fifo = tmp_path / "cards"
    os.mkfifo(fifo)
    reader = open_reader(f"lines:{fifo}")
    assert isinstance(reader, TextLineReader)
    try:
        assert reader.poll() is None  # no writer yet: still no wait
        for number in ("CARD-1", "CARD-2"):
            with open(fifo, "w") as writer:
                writer.write(number + "\n")
            assert [r.number for r in poll_all(reader)] == [number]
    finally:
        reader.close()


# -- serial ----------------------------------------------------------------------------------------


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A pseudo-terminal: write to the master fd, open the slave's path as the reader's port."""
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_serial_reader_over_a_real_pty(pty_pair: tuple[int, str]) -> None:
    master, port = pty_pair
    reader = SerialReader(port)
    try:
        assert reader.poll() is None
        # An RFID reader repeats the framed number while the card lies on it: one presentation.
        os.write(master, b"\x02GD2024123456\x03" * 5)
        reads = poll_all(reader, timeout=0.5, want=2)
        assert [(r.number, r.source) for r in reads] == [(CARD, "serial")]
        os.write(master, b"CARD-9\r\n")
        assert [r.number for r in poll_all(reader)] == ["CARD-9"]
    finally:
        reader.close()


def test_serial_spec_with_baud_rate(pty_pair: tuple[int, str]) -> None:
    master, port = pty_pair
    reader = open_reader(f"serial:{port}@19200")
    assert isinstance(reader, SerialReader)
    try:
        os.write(master, b"\x02CARD-5\x03")
        assert [r.number for r in poll_all(reader)] == ["CARD-5"]
    finally:
        reader.close()


def test_missing_serial_port_is_one_readable_line() -> None:
    with pytest.raises(ReaderError) as caught:
        SerialReader("/dev/ttyGUARDPOST9")
    assert str(caught.value) == (
        "serial card reader /dev/ttyGUARDPOST9 cannot be opened: No such file or directory; is it plugged in?"
    )
    with pytest.raises(ReaderError, match="baud rate as a number"):
        open_reader("serial:/dev/ttyUSB0@fast")


# -- keyboard wedge (evdev stands in: it is Linux-only and not installed in tests) ---------------------


class FakeInputDevice:
    opened: list[FakeInputDevice] = []
    events: list[types.SimpleNamespace] = []
    fail_grab = False

    def __init__(self, path: str) -> None:
        if not path.startswith("/dev/input/"):
            raise FileNotFoundError(2, "No such file or directory")
        self.grabbed = self.closed = False
        FakeInputDevice.opened.append(self)

    def grab(self) -> None:
        if FakeInputDevice.fail_grab:
            raise OSError(16, "Device or resource busy")
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        self.closed = True

    def read(self) -> list[types.SimpleNamespace]:
        if not FakeInputDevice.events:
            raise BlockingIOError
        events, FakeInputDevice.events = FakeInputDevice.events, []
        return events


CODES = {30: "KEY_A", 34: "KEY_G", 32: "KEY_D", 3: "KEY_2", 11: "KEY_0", 42: "KEY_LEFTSHIFT", 28: "KEY_ENTER"}
CODES[113] = ["KEY_MIN_INTERESTING", "KEY_MUTE"]  # evdev lists aliases for some codes


@pytest.fixture
def fake_evdev(monkeypatch: pytest.MonkeyPatch) -> type[FakeInputDevice]:
    module = types.SimpleNamespace(InputDevice=FakeInputDevice, ecodes=types.SimpleNamespace(EV_KEY=1, KEY=CODES))
    monkeypatch.setitem(sys.modules, "evdev", module)
    monkeypatch.setattr(FakeInputDevice, "opened", [])
    monkeypatch.setattr(FakeInputDevice, "events", [])
    monkeypatch.setattr(FakeInputDevice, "fail_grab", False)
    return FakeInputDevice


def keystrokes(*names: str) -> list[types.SimpleNamespace]:
    code = {name: c for c, name in CODES.items() if isinstance(name, str)}
    events = []
    for name in names:
        for value in (1, 2, 0):  # down, auto-repeat, up: only the down counts
            events.append(types.SimpleNamespace(type=1, code=code[name], value=value))
    events.append(types.SimpleNamespace(type=4, code=4, value=458792))  # EV_MSC scan code noise
    return events


def test_wedge_reader_grabs_the_device_and_reads_typed_lines(fake_evdev: type[FakeInputDevice]) -> None:
    reader = open_reader("wedge:/dev/input/by-id/usb-reader-event-kbd")
    assert isinstance(reader, KeyboardWedgeReader)
    [device] = fake_evdev.opened
    assert device.grabbed
    assert reader.poll() is None
    fake_evdev.events = keystrokes("KEY_LEFTSHIFT", "KEY_G", "KEY_D", "KEY_2", "KEY_0", "KEY_ENTER")
    assert [(r.number, r.source) for r in poll_all(reader)] == [("GD20", "wedge")]
    fake_evdev.events = [types.SimpleNamespace(type=1, code=113, value=1)] + keystrokes("KEY_A", "KEY_ENTER")
    assert [r.number for r in poll_all(reader)] == ["A"]
    reader.close()
    assert device.closed and not device.grabbed


def test_wedge_reader_open_failures(fake_evdev: type[FakeInputDevice], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ReaderError, match="cannot be opened: No such file or directory; is it plugged in"):
        KeyboardWedgeReader("/tmp/not-an-input-device")
    fake_evdev.fail_grab = True
    with pytest.raises(ReaderError, match="held by another program: Device or resource busy"):
        KeyboardWedgeReader("/dev/input/event3")
    assert fake_evdev.opened[-1].closed
    monkeypatch.setitem(sys.modules, "evdev", None)  # as on a machine without evdev
    with pytest.raises(ReaderError, match="needs evdev: pip install evdev"):
        KeyboardWedgeReader("/dev/input/event3")


# -- QR ----------------------------------------------------------------------------------------------


def frame_with_qr(text: str) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(text)
    code = cv2.resize(code, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST)
    code = cv2.copyMakeBorder(code, 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=255)
    frame = np.full((480, 640, 3), (90, 110, 100), np.uint8)
    height, width = code.shape
    frame[120 : 120 + height, 260 : 260 + width] = code[..., None]
    return frame


def test_qr_reader_reads_a_certificate_number_from_a_frame() -> None:
    reader = QrReader()
    frame = frame_with_qr("gd2024123456")
    read = reader.scan(frame)
    assert read is not None and (read.number, read.source) == (CARD, "qr")
    assert reader.scan(frame) is None  # the same certificate still in view
    assert QrReader(repeat_s=0).scan(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)) is not None


def test_qr_reader_ignores_frames_without_a_number() -> None:
    reader = QrReader()
    assert reader.scan(np.full((480, 640, 3), 128, np.uint8)) is None
    assert reader.scan(np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)) is None
    assert reader.scan(frame_with_qr("https://example.com/verify?no=1")) is None


# -- fake and specs ----------------------------------------------------------------------------------


def test_fake_reader_and_simple_specs() -> None:
    reader = open_reader("fake")
    assert isinstance(reader, FakeReader)
    assert reader.push(" card-1 ") is not None and reader.push("bad/number") is None
    reader.push("CARD-1")  # a fake repeats on demand
    assert [r.number for r in poll_all(reader, want=2)] == ["CARD-1", "CARD-1"]
    assert reader.poll() is None
    assert open_reader("none") is None


@pytest.mark.parametrize("spec", ["", "camera:0", "serial:", "wedge:", "lines:", "qr", "usb:/dev/x"])
def test_unknown_specs_list_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ReaderError, match=r"use none, fake, serial:PORT\[@BAUD\], wedge:.*lines:PATH"):
        open_reader(spec)


def test_missing_lines_path_is_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="card reader input .* cannot be opened: No such file or directory"):
        open_reader(f"lines:{tmp_path / 'missing'}")
