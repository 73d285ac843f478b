"""Face sharpness: variance of the Laplacian at the size the encoder sees, shared by the gate and enrolment."""

from __future__ import annotations

import cv2
import numpy as np

from biometrics.faces import FaceBox

# face_recognition encodes a 150 px chip with 25 % padding, so it sees the face about 100 px wide.
# Sharpness is judged at that size: detail finer than the encoder sees does not matter, and a large
# face must not be called blurry because each of its many pixels changes little.
SHARPNESS_FACE_PX = 100


def face_sharpness(rgb: np.ndarray, box: FaceBox) -> float:
    """Variance of the Laplacian of the grey face, shrunk to SHARPNESS_FACE_PX if larger; 0 for an empty box."""
    height, width = rgb.shape[:2]
    top, bottom = max(box.top, 0), min(box.bottom, height)
    left, right = max(box.left, 0), min(box.right, width)
    if bottom - top < 3 or right - left < 3:  # the Laplacian needs a 3x3 neighbourhood
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    scale = SHARPNESS_FACE_PX / max(grey.shape)
    if scale < 1.0:
        size = (max(3, round(grey.shape[1] * scale)), max(3, round(grey.shape[0] * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
