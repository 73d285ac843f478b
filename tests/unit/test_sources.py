"""Frame sources: folder order, skipping and looping, video files, cameras and spec parsing."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.sources import (
    CameraSource,
    FolderSource,
    Frame,
    FrameSource,
    ReconnectingSource,
    SourceError,
    VideoSource,
    open_source,
)


def write_image(path: Path, value: int) -> None:
    assert cv2.imwrite(str(path), np.full((12, 16, 3), value, dtype=np.uint8))


def drain(source: FrameSource, limit: int = 50) -> list[Frame]:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    for name, value in [("b.png", 20), ("a.jpg", 10), ("c.BMP", 30)]:
        write_image(tmp_path / name, value)
    (tmp_path / "notes.txt").write_text("not a frame")
    return tmp_path


def test_folder_yields_images_in_name_order_then_none(image_folder: Path) -> None:
    source = FolderSource(image_folder)
    frames = drain(source)
    assert [frame.name for frame in frames] == ["a.jpg", "b.png", "c.BMP"]
    assert frames[0].rgb.shape == (12, 16, 3) and frames[0].rgb.dtype == np.uint8
    assert source.read() is None


def test_folder_skips_unreadable_image_with_a_warning(image_folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    (image_folder / "ab-broken.jpg").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="guardpost.agent.sources"):
        names = [frame.name for frame in drain(FolderSource(image_folder))]
    assert names == ["a.jpg", "b.png", "c.BMP"]
    assert any("ab-broken.jpg" in record.getMessage() for record in caplog.records)


def test_looping_folder_restarts_and_warns_once_per_bad_file(
    image_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (image_folder / "zz-broken.png").write_bytes(b"garbage")
    source = FolderSource(image_folder, loop=True)
    with caplog.at_level(logging.WARNING, logger="guardpost.agent.sources"):
        names = [frame.name for frame in drain(source, limit=7)]
    assert names == ["a.jpg", "b.png", "c.BMP", "a.jpg", "b.png", "c.BMP", "a.jpg"]
    assert len(caplog.records) == 1


def test_looping_folder_without_readable_images_returns_none(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    assert FolderSource(tmp_path, loop=True).read() is None


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        FolderSource(tmp_path / "absent")


def test_closed_folder_yields_nothing(image_folder: Path) -> None:
    source = FolderSource(image_folder, loop=True)
    source.close()
    assert source.read() is None


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    path = tmp_path / "gate.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    bgr_red = np.zeros((48, 64, 3), dtype=np.uint8)
    bgr_red[..., 2] = 255
    for _ in range(5):
        writer.write(bgr_red)
    writer.release()
    return path


def test_video_file_frames_come_back_as_rgb(video_file: Path) -> None:
    source = VideoSource(video_file)
    frames = drain(source)
    source.close()
    assert len(frames) == 5
    red, green, blue = frames[0].rgb.reshape(-1, 3).mean(axis=0)
    assert red > 200 and green < 40 and blue < 40
    assert frames[0].name == f"{video_file}#000001"


def test_looping_video_restarts(video_file: Path) -> None:
    source = VideoSource(video_file, loop=True)
    assert len(drain(source, limit=12)) == 12
    source.close()


def test_unopenable_video_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "fake.avi").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot be opened"):
        VideoSource(tmp_path / "fake.avi")


def test_missing_camera_is_a_readable_source_error() -> None:
    with pytest.raises(SourceError, match=r"camera 99 cannot be opened: .*/dev/video99"):
        CameraSource(99)


def test_open_source_parses_specs(image_folder: Path, video_file: Path) -> None:
    assert isinstance(open_source(f"folder:{image_folder}"), FolderSource)
    assert isinstance(open_source(str(image_folder)), FolderSource)
    looping = open_source(str(image_folder), loop=True)
    assert isinstance(looping, FolderSource) and looping.loop
    video = open_source(str(video_file))
    assert isinstance(video, VideoSource)
    video.close()
    camera = open_source("camera:99")
    assert isinstance(camera, ReconnectingSource) and camera.live


def test_missing_camera_is_reported_and_retried_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    camera = open_source("camera:99")
    assert camera.read() is None
    assert camera.problem is not None and "camera 99 cannot be opened" in camera.problem
    assert camera.read() is None  # within the retry interval: no new attempt, no new log line
    assert sum("camera 99" in r.getMessage() for r in caplog.records) == 1
    camera.close()


def test_reconnecting_source_recovers_when_the_device_returns(image_folder: Path) -> None:
    attempts = []

    def opener() -> FolderSource:
        attempts.append(1)
        if len(attempts) < 2:
            raise SourceError("camera 0 cannot be opened: unplugged")
        return FolderSource(image_folder, loop=True)

    source = ReconnectingSource(opener, retry_s=0.0, max_misses=3)
    assert source.read() is None and source.problem == "camera 0 cannot be opened: unplugged"
    assert source.read() is not None and source.problem is None


@pytest.mark.parametrize("spec", ["camera:", "camera:front", "nowhere/at/all", "http://cam.local/feed"])
def test_open_source_rejects_unknown_specs(spec: str) -> None:
    with pytest.raises(SourceError, match="camera"):
        open_source(spec)


def test_rtsp_password_never_appears_in_errors() -> None:
    # Port 9 (discard) on localhost refuses quickly, so this fails fast without a network.
    stream = open_source("rtsp://admin:s3cret@127.0.0.1:9/stream")
    assert stream.read() is None
    assert "s3cret" not in stream.problem
    assert "admin:***@127.0.0.1:9" in stream.problem
    stream.close()
