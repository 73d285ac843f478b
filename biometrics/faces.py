"""Face pipeline: detect the largest face on a downscaled frame, encode it at full size."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ImageFile

from biometrics.images import ImageError

with warnings.catch_warnings():
    # face_recognition_models (2017) imports pkg_resources; setuptools<81 is pinned for it, so the
    # deprecation notice is ours to know, not every terminal log's.
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    import face_recognition

# face_recognition turns this on process-wide when imported; a half-grey enrolment photo or camera
# frame must be an error, not a silently damaged encoding, so restore PIL's default.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixel coordinates; bottom and right are exclusive."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    def as_css(self) -> tuple[int, int, int, int]:
        """The (top, right, bottom, left) order face_recognition uses."""
        return (self.top, self.right, self.bottom, self.left)


class FaceEncoder:
    """Detects faces on a small copy of the frame and encodes the chosen face at full resolution."""

    # 320 finds both sample photos upright, but misses Eileen Collins (astronaut.png, face ~90 px
    # wide in 512 px) once the photo is rotated by 5-8 degrees: scaled to 320 her face is ~56 px,
    # below the 80 px window HOG searches without upsampling. 400 found every sample variant
    # (rotations -8..+8 degrees combined with flip, brightness, blur) and costs ~15 ms against
    # ~10 ms at 320 on a 640x480 frame, small next to ~75 ms for one encoding.
    DEFAULT_DETECT_WIDTH = 400

    def __init__(self, detect_width: int = DEFAULT_DETECT_WIDTH, upsample: int = 0, num_jitters: int = 1) -> None:
        if detect_width < 80:
            raise ValueError(f"detect_width must be at least 80 (HOG's face window), got {detect_width}")
        if upsample < 0 or num_jitters < 1:
            raise ValueError("upsample must be >= 0 and num_jitters >= 1")
        self.detect_width = detect_width
        self.upsample = upsample
        self.num_jitters = num_jitters

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """All faces found on the downscaled frame, in full-resolution coordinates."""
        rgb = _checked_rgb(rgb)
        height, width = rgb.shape[:2]
        scale = min(1.0, self.detect_width / width)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        else:
            small = rgb
        locations = face_recognition.face_locations(small, number_of_times_to_upsample=self.upsample, model="hog")
        boxes = [_scaled_box(location, scale, width, height) for location in locations]
        return [box for box in boxes if box.area > 0]

    def detect_largest(self, rgb: np.ndarray) -> FaceBox | None:
        # The guard at the gate is the closest person, so the largest face is the one to verify.
        return max(self.detect(rgb), key=lambda box: box.area, default=None)

    def count_faces(self, rgb: np.ndarray) -> int:
        return len(self.detect(rgb))

    def encode(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        """The 128-d float64 descriptor of the face in ``box``."""
        encodings = face_recognition.face_encodings(
            _checked_rgb(rgb), known_face_locations=[box.as_css()], num_jitters=self.num_jitters
        )
        return np.asarray(encodings[0], dtype=np.float64)

    def largest_face(self, rgb: np.ndarray) -> tuple[FaceBox, np.ndarray] | None:
        rgb = _checked_rgb(rgb)
        box = self.detect_largest(rgb)
        if box is None:
            return None
        return box, self.encode(rgb, box)


def _checked_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"expected an RGB uint8 image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    # dlib rejects strided views such as rgb[:, ::-1]; copying only when needed keeps the common path free.
    return np.ascontiguousarray(rgb)


def _scaled_box(location: tuple[int, int, int, int], scale: float, width: int, height: int) -> FaceBox:
    top, right, bottom, left = (round(value / scale) for value in location)
    return FaceBox(
        top=min(max(top, 0), height),
        right=min(max(right, 0), width),
        bottom=min(max(bottom, 0), height),
        left=min(max(left, 0), width),
    )
