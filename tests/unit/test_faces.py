"""Face pipeline on real sample photos: detection, encoding, image errors and gate-frame variants."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biometrics.faces import FaceBox, FaceEncoder
from biometrics.images import ImageError, load_image_rgb
from edge_agent.decision import decide
from guardpost.samples import SAMPLE_GUARDS, astronaut_path, grace_hopper_path, no_face_rgb, write_gate_frames


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    return FaceEncoder()


@pytest.fixture(scope="module")
def originals(encoder: FaceEncoder) -> dict[str, tuple[FaceBox, np.ndarray]]:
    """guard_id -> (largest box, encoding) of each sample photo, computed once."""
    found = {}
    for guard in SAMPLE_GUARDS:
        face = encoder.largest_face(load_image_rgb(guard.photo_path()))
        assert face is not None, f"no face found in {guard.name}'s photo"
        found[guard.guard_id] = face
    return found


@pytest.fixture(scope="module")
def gallery(originals: dict[str, tuple[FaceBox, np.ndarray]]) -> dict[str, np.ndarray]:
    return {guard_id: encoding[None, :] for guard_id, (_, encoding) in originals.items()}


@pytest.fixture(scope="module")
def gate_frames(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_gate_frames(tmp_path_factory.mktemp("gate"))


def test_sample_photos_load_as_rgb() -> None:
    assert load_image_rgb(grace_hopper_path()).shape == (600, 512, 3)
    astronaut = load_image_rgb(astronaut_path())
    assert astronaut.shape == (512, 512, 3) and astronaut.dtype == np.uint8


@pytest.mark.slow
@pytest.mark.parametrize("photo", [grace_hopper_path, astronaut_path], ids=["hopper", "collins"])
def test_documented_detection_settings_find_exactly_one_face(photo: Callable[[], Path]) -> None:
    assert FaceEncoder(detect_width=320, upsample=0).count_faces(load_image_rgb(photo())) == 1


@pytest.mark.slow
def test_largest_face_is_a_plausible_box_in_full_resolution(
    originals: dict[str, tuple[FaceBox, np.ndarray]],
) -> None:
    hopper_box, hopper_encoding = originals["G-HOPPER"]
    # Her face sits in the upper middle of the 512x600 portrait and is roughly 200 px across.
    assert 120 < hopper_box.width < 280 and 120 < hopper_box.height < 280
    assert 0 <= hopper_box.left < hopper_box.right <= 512 and 0 <= hopper_box.top < hopper_box.bottom <= 600
    assert hopper_box.area == hopper_box.width * hopper_box.height
    assert hopper_box.as_css() == (hopper_box.top, hopper_box.right, hopper_box.bottom, hopper_box.left)
    assert hopper_encoding.shape == (128,) and hopper_encoding.dtype == np.float64


@pytest.mark.slow
def test_no_face_image_yields_none(encoder: FaceEncoder) -> None:
    assert encoder.largest_face(no_face_rgb()) is None
    assert encoder.count_faces(no_face_rgb()) == 0


@pytest.mark.slow
def test_different_people_are_far_apart(originals: dict[str, tuple[FaceBox, np.ndarray]]) -> None:
    distance = np.linalg.norm(originals["G-HOPPER"][1] - originals["G-COLLINS"][1])
    assert distance > 0.6


@pytest.mark.slow
def test_gate_frames_are_recognised_as_the_right_guard(
    encoder: FaceEncoder, gallery: dict[str, np.ndarray], gate_frames: list[Path]
) -> None:
    assert gate_frames == sorted(gate_frames)
    assert gate_frames[-1].name.endswith("-empty.jpg")
    for path in gate_frames[:-1]:
        expected = next(guard.guard_id for guard in SAMPLE_GUARDS if f"-{guard.guard_id}-" in path.name)
        face = encoder.largest_face(load_image_rgb(path))
        assert face is not None, f"no face in {path.name}"
        decision = decide(face[1], gallery, threshold=0.5)
        assert decision.outcome == "accept", f"{path.name}: {decision}"
        assert decision.guard_id == expected, f"{path.name}: {decision}"
    assert encoder.largest_face(load_image_rgb(gate_frames[-1])) is None


def test_every_guard_has_several_variants(gate_frames: list[Path]) -> None:
    for guard in SAMPLE_GUARDS:
        assert sum(f"-{guard.guard_id}-" in path.name for path in gate_frames) >= 5


def test_alpha_and_grayscale_images_become_rgb(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 3), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "alpha.png")
    loaded = load_image_rgb(tmp_path / "alpha.png")
    assert loaded.shape == (3, 4, 3)
    assert tuple(loaded[0, 0]) == (0, 0, 255)
    assert tuple(loaded[1, 1]) == (255, 255, 255)  # transparent shows as white, not hidden red

    Image.new("L", (5, 2), 77).save(tmp_path / "gray.png")
    assert load_image_rgb(tmp_path / "gray.png").shape == (2, 5, 3)


def test_missing_file_raises_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read image .*nope.jpg"):
        load_image_rgb(tmp_path / "nope.jpg")


def test_corrupt_file_raises_image_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError, match="cannot read image .*bad.jpg"):
        load_image_rgb(tmp_path / "bad.jpg")


def test_truncated_file_raises_image_error(tmp_path: Path) -> None:
    data = grace_hopper_path().read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image_rgb(tmp_path / "cut.jpg")


def png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG that claims a huge size: a decompression bomb as far as the header goes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


# 50 MP is under PIL's own warning limit, 100 MP between its warning and error limits, 400 MP above both.
@pytest.mark.parametrize("side", [7_100, 10_000, 20_000])
def test_huge_images_are_refused_before_decoding(tmp_path: Path, side: int) -> None:
    png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(ImageError, match="bomb.png"):
        load_image_rgb(tmp_path / "bomb.png")


def test_encoder_rejects_non_rgb_arrays(encoder: FaceEncoder) -> None:
    with pytest.raises(ImageError, match="RGB uint8"):
        encoder.detect_largest(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ImageError, match="RGB uint8"):
        encoder.count_faces(np.zeros((10, 10, 3), dtype=np.float32))
