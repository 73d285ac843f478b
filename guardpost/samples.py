"""Sample faces for demos and tests, read from photos shipped in matplotlib and scikit-image."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from biometrics.images import load_image_rgb

_DEMO_HINT = "install the demo extras: pip install 'guardpost[demo]'"


def grace_hopper_path() -> Path:
    """Grace Hopper's portrait from matplotlib's sample data."""
    import matplotlib  # imported here so the package works without the demo extras

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from matplotlib; {_DEMO_HINT}")
    return path


def astronaut_path() -> Path:
    """NASA's portrait of Eileen Collins from scikit-image's bundled data."""
    # find_spec locates the package without running skimage/__init__ and its lazy-loader machinery.
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"scikit-image is not installed; {_DEMO_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "astronaut.png"
        if path.is_file():
            return path
    raise FileNotFoundError(f"astronaut.png is missing from scikit-image; {_DEMO_HINT}")


def no_face_rgb() -> np.ndarray:
    """A 480x640 RGB scene with shapes and a gradient but no face: an empty gate."""
    ramp = np.linspace(40, 200, 640, dtype=np.float32)
    image = np.empty((480, 640, 3), dtype=np.uint8)
    image[..., 0] = ramp.astype(np.uint8)
    image[..., 1] = ramp[::-1].astype(np.uint8)
    image[..., 2] = 120
    cv2.rectangle(image, (60, 80), (220, 400), (90, 60, 30), thickness=-1)  # a door
    cv2.circle(image, (470, 150), 60, (230, 230, 230), thickness=-1)  # a lamp
    cv2.line(image, (0, 430), (639, 430), (20, 20, 20), thickness=6)  # the floor edge
    cv2.putText(image, "GATE 1", (380, 330), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (10, 10, 10), 3)
    return image


class SampleGuard(NamedTuple):
    guard_id: str
    name: str
    photo_path: Callable[[], Path]


SAMPLE_GUARDS: list[SampleGuard] = [
    SampleGuard("G-HOPPER", "Grace Hopper", grace_hopper_path),
    SampleGuard("G-COLLINS", "Eileen Collins", astronaut_path),
]


def _variants(rgb: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """What a gate camera does to a face that an enrolment photo does not show."""
    height, width = rgb.shape[:2]

    def rotated(degrees: float) -> np.ndarray:
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
        return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)

    return [
        ("flipped", np.ascontiguousarray(rgb[:, ::-1])),
        ("bright", cv2.convertScaleAbs(rgb, alpha=1.2, beta=25)),
        ("dim", cv2.convertScaleAbs(rgb, alpha=0.8, beta=-20)),
        ("w640", cv2.resize(rgb, (640, round(height * 640 / width)), interpolation=cv2.INTER_LINEAR)),
        ("tilt-left", rotated(5.0)),
        ("tilt-right", rotated(-5.0)),
        ("blurred", cv2.GaussianBlur(rgb, (5, 5), 1.2)),
    ]


def write_gate_frames(folder: Path) -> list[Path]:
    """Write JPEG frames of the sample guards walking up to a gate, then the empty gate.

    Names are ``NNN-<guard_id>-<variant>.jpg`` and ``NNN-empty.jpg`` so they sort in walk order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frames = [
        (f"{guard.guard_id}-{variant}", image)
        for guard in SAMPLE_GUARDS
        for variant, image in _variants(load_image_rgb(guard.photo_path()))
    ]
    frames.append(("empty", no_face_rgb()))
    paths = []
    for number, (label, rgb) in enumerate(frames, start=1):
        path = folder / f"{number:03d}-{label}.jpg"
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"cannot write frame {path}")
        paths.append(path)
    return paths
