"""Frame sources (camera, RTSP or video file, folder of images) behind one small interface."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from biometrics.images import ImageError, load_image_rgb

_log = logging.getLogger("guardpost.agent.sources")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


@dataclass
class Frame:
    rgb: np.ndarray
    name: str


class SourceError(RuntimeError):
    """A frame source that cannot be opened; the message says what to check."""


class FrameSource(Protocol):
    def read(self) -> Frame | None:
        """The next frame, or None when exhausted or when no frame is available right now."""

    def close(self) -> None: ...


class FolderSource:
    """Images in a folder in sorted name order, optionally looping."""

    def __init__(self, folder: str | Path, loop: bool = False) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"image folder {self.folder} does not exist or is not a directory")
        self.loop = loop
        self._paths = sorted(
            path for path in self.folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
        self._index = 0

    def read(self) -> Frame | None:
        while self._paths:
            if self._index >= len(self._paths):
                if not self.loop:
                    return None
                self._index = 0
            path = self._paths[self._index]
            try:
                rgb = load_image_rgb(path)
            except ImageError as exc:
                _log.warning("skipping unreadable frame: %s", exc)
                # Forget it so a looping source warns once rather than on every pass.
                del self._paths[self._index]
                continue
            self._index += 1
            return Frame(rgb=rgb, name=path.name)
        return None

    def close(self) -> None:
        self._paths = []


class VideoSource:
    """A video file or network stream (rtsp://...) read with OpenCV."""

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self._label = _redacted(str(path))
        self.loop = loop
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(
                f"video {self._label} cannot be opened: check the path or URL, the credentials "
                "and that the codec is supported"
            )
        self._count = 0

    def read(self) -> Frame | None:
        ok, bgr = self._capture.read()
        if not ok and self.loop and self._count:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok:
            return None
        self._count += 1
        return Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), name=f"{self._label}#{self._count:06d}")

    def close(self) -> None:
        self._capture.release()


class CameraSource:
    """A local camera by index (/dev/videoN on Linux)."""

    def __init__(self, index: int, width: int = 640, height: int = 480) -> None:
        self.index = index
        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"camera {index} cannot be opened: is it plugged in and is /dev/video{index} readable?")
        # A request, not a guarantee: drivers fall back to the nearest mode they support.
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._count = 0

    def read(self) -> Frame | None:
        ok, bgr = self._capture.read()
        if not ok:
            return None  # cameras drop frames now and then; the caller retries
        self._count += 1
        return Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), name=f"camera{self.index}#{self._count:06d}")

    def close(self) -> None:
        self._capture.release()


class ReconnectingSource:
    """A live camera or stream that may be unplugged or down: reported clearly and reopened, never a crash.

    ``read`` returns None while the device is unavailable; ``problem`` says why, for the log, the
    heartbeat and the guard's screen.
    """

    live = True

    def __init__(self, opener: Callable[[], FrameSource], retry_s: float = 5.0, max_misses: int = 50) -> None:
        self._opener, self._retry_s, self._max_misses = opener, retry_s, max_misses
        self._source: FrameSource | None = None
        self._next_try = 0.0
        self._misses = 0
        self.problem: str | None = None

    def read(self) -> Frame | None:
        if self._source is None and not self._reopen():
            return None
        assert self._source is not None
        frame = self._source.read()
        if frame is not None:
            self._misses = 0
            return frame
        self._misses += 1
        if self._misses >= self._max_misses:
            # Many empty reads in a row: the device went away; close it and reopen later.
            self._fail("stopped delivering frames; reopening")
        return None

    def _reopen(self) -> bool:
        now = time.monotonic()
        if now < self._next_try:
            return False
        try:
            self._source = self._opener()
        except SourceError as exc:
            self._fail(str(exc))
            return False
        if self.problem is not None:
            _log.info("frame source is back")
        self.problem, self._misses = None, 0
        return True

    def _fail(self, why: str) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        if why != self.problem:
            _log.error("%s (retrying every %.0fs)", why, self._retry_s)
        self.problem = why
        self._next_try = time.monotonic() + self._retry_s

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None


def open_source(spec: str, loop: bool = False) -> FrameSource:
    """Open ``camera:N``, ``rtsp://...``, ``folder:PATH``, a directory of images or a video file."""
    if spec.startswith("camera:"):
        index = spec.removeprefix("camera:")
        if not index.isdigit():
            raise SourceError(f"camera index must be a number, as in camera:0; got {spec!r}")
        return ReconnectingSource(lambda: CameraSource(int(index)))
    if spec.startswith(("rtsp://", "rtsps://")):
        return ReconnectingSource(lambda: VideoSource(spec))
    if spec.startswith("folder:"):
        return FolderSource(spec.removeprefix("folder:"), loop=loop)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, loop=loop)
    if path.is_file():
        return VideoSource(path, loop=loop)
    raise SourceError(
        f"unknown frame source {_redacted(spec)!r}: use camera:N, rtsp://HOST/PATH, folder:PATH, "
        "an existing folder of images or an existing video file"
    )


def _redacted(location: str) -> str:
    """``location`` without a password, since frame names and errors end up in logs."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
