"""Facial landmarks (dlib's 68 points) and a geometric head-pose estimate from them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from biometrics.faces import FaceBox, face_recognition  # faces imports face_recognition with its warning filtered
from biometrics.images import ImageError

# Anthropometric constants of a generic frontal face, in inter-ocular distances (between eye centres).
# Generic 3D head models (e.g. the one in OpenCV's solvePnP head-pose examples) put the nose tip
# 0.4-0.5 in front of the eye corners; 0.45 splits the difference. An error here scales tan(yaw):
# 15 degrees measures as 13.5-17.
NOSE_DEPTH = 0.45
# The nose tip sits this far below the eye line on a frontal face: 0.54 in the same generic model,
# 0.55 and 0.58 on the two sample portraits.
NOSE_DROP = 0.55


@dataclass(frozen=True, eq=False)  # == on arrays is elementwise, so field-by-field equality would raise
class Landmarks:
    """dlib's 68 points grouped as face_recognition names them, each an (n, 2) float array of (x, y).

    Left and right are as seen in the image: ``left_eye`` is the guard's right eye.
    ``nose_bridge`` runs down to the tip of the nose (point 30); ``nose_tip`` is the row of nostril
    points under it (31-35).
    """

    chin: np.ndarray
    left_eyebrow: np.ndarray
    right_eyebrow: np.ndarray
    nose_bridge: np.ndarray
    nose_tip: np.ndarray
    left_eye: np.ndarray
    right_eye: np.ndarray
    top_lip: np.ndarray
    bottom_lip: np.ndarray

    def __post_init__(self) -> None:
        for field in fields(self):
            points = np.array(getattr(self, field.name), dtype=np.float64)  # a copy: callers keep theirs
            expected = _POINT_COUNTS[field.name]
            if points.shape != (expected, 2) or not np.all(np.isfinite(points)):
                raise ValueError(f"landmarks {field.name} must be {expected} finite (x, y) points, got {points.shape}")
            points.setflags(write=False)  # frozen means the points too, not just the attribute
            object.__setattr__(self, field.name, points)

    @classmethod
    def from_parts(cls, parts: Mapping[str, Sequence[Sequence[float]]]) -> Landmarks:
        """From face_recognition's dict of part name -> list of (x, y)."""
        return cls(**{name: np.asarray(parts[name], dtype=np.float64) for name in _POINT_COUNTS})

    @property
    def left_eye_centre(self) -> np.ndarray:
        return self.left_eye.mean(axis=0)

    @property
    def right_eye_centre(self) -> np.ndarray:
        return self.right_eye.mean(axis=0)

    @property
    def inter_ocular(self) -> float:
        """Distance between the eye centres in pixels: the face's own ruler."""
        return float(np.linalg.norm(self.right_eye_centre - self.left_eye_centre))


_POINT_COUNTS = {
    "chin": 17,
    "left_eyebrow": 5,
    "right_eyebrow": 5,
    "nose_bridge": 4,
    "nose_tip": 5,
    "left_eye": 6,
    "right_eye": 6,
    "top_lip": 12,
    "bottom_lip": 12,
}


class Pose(NamedTuple):
    """Head rotation in degrees: yaw > 0 when the nose points to the image's right, pitch > 0 looking up."""

    yaw_deg: float
    pitch_deg: float


def face_landmarks(rgb: np.ndarray, box: FaceBox) -> Landmarks:
    """The 68 landmarks of the face in ``box`` (about 1 ms on a 640x480 frame: the cost is the box, not the frame)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"expected an RGB uint8 image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    # dlib rejects strided views such as rgb[:, ::-1].
    parts = face_recognition.face_landmarks(np.ascontiguousarray(rgb), face_locations=[box.as_css()], model="large")
    return Landmarks.from_parts(parts[0])


def estimate_pose(landmarks: Landmarks) -> Pose:
    """Yaw and pitch from where the nose tip sits relative to the eyes; no camera model needed.

    Weak perspective: the head is far from the camera compared with its depth, and the eyes and the
    nose tip are rigid points of a generic face (NOSE_DEPTH in front of the eyes, NOSE_DROP below
    them). Measured in the frame of the eye line, so roll cancels, and in units of the projected
    inter-ocular distance, which shrinks by cos(yaw) as the head turns:

    - sideways = depth * tan(yaw), where depth is how far the tip stands in front of the eyes once
      the head is pitched (NOSE_DEPTH at pitch 0, less when looking down);
    - below * cos(yaw) = NOSE_DROP * cos(pitch) - NOSE_DEPTH * sin(pitch).

    Both are solved together, so a camera above eye level does not hide a turn. Expect several
    degrees of error from individual faces (a long nose reads as looking down) and from the camera's
    height (which reads as pitch): fine for "facing the camera or not", not for measuring angles.
    Pitch saturates at about -39 degrees, where the generic tip would sit level with the eyes.
    """
    sideways, below = _nose_offset(landmarks)
    yaw = _solve_yaw(sideways, below)
    return Pose(math.degrees(yaw), math.degrees(_pitch(below * math.cos(yaw))))


# Eye midpoint to nose tip, and the tip's angle in front of the eye plane, on the generic face.
_RADIUS = math.hypot(NOSE_DROP, NOSE_DEPTH)
_ELEVATION = math.atan2(NOSE_DEPTH, NOSE_DROP)
# Pitches trusted when working out the nose's depth. Below -25 degrees the tip would be nearly level
# with the eyes and the smallest sideways offset would read as a large turn; a long nose is the
# likelier cause. Above ~51 degrees the depth would shrink again and break the solver's monotonicity.
_DEPTH_PITCH_RANGE = (math.radians(-25.0), math.radians(50.0))


def _nose_offset(landmarks: Landmarks) -> tuple[float, float]:
    """The nose tip from the eye midpoint, along and across the eye line, in projected inter-ocular distances."""
    left, right = landmarks.left_eye_centre, landmarks.right_eye_centre
    span = right - left
    iod = float(np.linalg.norm(span))
    if iod < 1e-6:
        raise ValueError("eye centres coincide: these landmarks are not a face")
    along = span / iod  # towards the image's right
    down = np.array([-along[1], along[0]])  # perpendicular to it, towards the mouth
    offset = landmarks.nose_bridge[-1] - (left + right) / 2
    return float(offset @ along) / iod, float(offset @ down) / iod


def _pitch(drop: float) -> float:
    return math.acos(min(1.0, max(-1.0, drop / _RADIUS))) - _ELEVATION


def _solve_yaw(sideways: float, below: float) -> float:
    # depth(yaw) * tan(yaw) grows with yaw over the trusted pitch range, so bisection finds the one root.
    def depth(yaw: float) -> float:
        pitch = min(max(_pitch(below * math.cos(yaw)), _DEPTH_PITCH_RANGE[0]), _DEPTH_PITCH_RANGE[1])
        return _RADIUS * math.sin(pitch + _ELEVATION)

    low, high = 0.0, math.radians(89.0)
    for _ in range(40):  # 89 degrees / 2**40: far below what landmarks can tell
        middle = (low + high) / 2
        if depth(middle) * math.tan(middle) < abs(sideways):
            low = middle
        else:
            high = middle
    return math.copysign((low + high) / 2, sideways)
