"""Liveness at the gate: blink and head-turn challenges over landmarks, and a MiniFASNet anti-spoofing score."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from biometrics.faces import FaceBox
from biometrics.landmarks import Landmarks, estimate_pose

Verdict = Literal["pending", "pass", "fail"]
AntiSpoofKind = Literal["minifasnet_v2", "minifasnet_v1se"]


class LivenessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    challenge: Literal["none", "blink", "turn"] = "blink"
    # Soukupova & Cech: open eyes measure about 0.25-0.35 and a blink dips well below 0.2; the two
    # sample portraits measure 0.30 and 0.31. Two thresholds (hysteresis) so an eye flickering
    # around one value, or a squint, does not count as a blink.
    ear_closed: float = Field(default=0.21, gt=0.0, lt=1.0)
    ear_open: float = Field(default=0.26, gt=0.0, lt=1.0)
    # A blink takes 0.1-0.4 s; four seconds leaves time to read the prompt.
    challenge_timeout_s: float = Field(default=4.0, gt=0.0, le=60.0)
    turn_min_yaw_deg: float = Field(default=15.0, ge=5.0, le=60.0)
    antispoof_model: Path | None = None
    antispoof_kind: AntiSpoofKind = "minifasnet_v2"
    antispoof_min_real: float = Field(default=0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _hysteresis(self) -> LivenessConfig:
        if self.ear_closed >= self.ear_open:
            raise ValueError("ear_closed must be below ear_open")
        return self


def eye_aspect_ratio(eye_points: np.ndarray) -> float:
    """Soukupova & Cech (2016): eyelid openness over eye width, from dlib's six points of one eye.

    Points run from one corner over the upper lid to the other corner and back under the lower lid,
    so (p2, p6) and (p3, p5) are the vertical pairs and (p1, p4) the corners.
    """
    p = np.asarray(eye_points, dtype=np.float64)
    if p.shape != (6, 2):
        raise ValueError(f"an eye has 6 (x, y) points, got shape {p.shape}")
    width = float(np.linalg.norm(p[0] - p[3]))
    if width < 1e-6:
        raise ValueError("eye corners coincide: not an eye")
    return float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width)


def mean_eye_aspect_ratio(landmarks: Landmarks) -> float:
    # Both eyes averaged, as in the paper: a wink or one occluded eye moves it only half way.
    return (eye_aspect_ratio(landmarks.left_eye) + eye_aspect_ratio(landmarks.right_eye)) / 2.0


class _Challenge:
    """Shared clock and verdict: the timeout runs from the first frame, and a verdict is final."""

    def __init__(self, cfg: LivenessConfig) -> None:
        self.cfg = cfg
        self._started: float | None = None
        self._verdict: Verdict = "pending"

    @property
    def prompt(self) -> str:
        """What the gate shows or says to the guard while the challenge is pending."""
        raise NotImplementedError

    @property
    def verdict(self) -> Verdict:
        return self._verdict

    def update(self, t: float, landmarks: Landmarks | None) -> Verdict:
        """Feed one frame (timestamp in seconds, landmarks or None when no face was found)."""
        if self._verdict != "pending":
            return self._verdict
        if self._started is None:
            self._started = t
        if t - self._started > self.cfg.challenge_timeout_s:
            self._verdict = "fail"
        elif landmarks is not None and self._step(landmarks):
            self._verdict = "pass"
        return self._verdict

    def _step(self, landmarks: Landmarks) -> bool:
        raise NotImplementedError


class BlinkChallenge(_Challenge):
    """Passes when the eyes are seen open, then closed, then open again before the timeout.

    A frame without a face keeps the state: a blink can make a detector drop a frame or two.
    """

    def __init__(self, cfg: LivenessConfig) -> None:
        super().__init__(cfg)
        self._phase: Literal["wait_open", "wait_closed", "wait_reopen"] = "wait_open"

    @property
    def prompt(self) -> str:
        return "Please blink"

    def _step(self, landmarks: Landmarks) -> bool:
        ear = mean_eye_aspect_ratio(landmarks)
        if self._phase == "wait_open" and ear >= self.cfg.ear_open:
            self._phase = "wait_closed"
        elif self._phase == "wait_closed" and ear < self.cfg.ear_closed:
            self._phase = "wait_reopen"
        elif self._phase == "wait_reopen" and ear >= self.cfg.ear_open:
            return True
        return False


class TurnChallenge(_Challenge):
    """Passes when the yaw moves turn_min_yaw_deg away from where it started, either way, then comes back.

    "Back" means within half of turn_min_yaw_deg of the start: a guard does not return to the exact
    angle, and a photo moved sideways does not change yaw at all.
    """

    def __init__(self, cfg: LivenessConfig) -> None:
        super().__init__(cfg)
        self._start_yaw: float | None = None
        self._turned = False

    @property
    def prompt(self) -> str:
        return "Please look back at the camera" if self._turned else "Please turn your head slightly"

    def _step(self, landmarks: Landmarks) -> bool:
        yaw = estimate_pose(landmarks).yaw_deg
        if self._start_yaw is None:
            self._start_yaw = yaw
        away = abs(yaw - self._start_yaw)
        if not self._turned:
            self._turned = away >= self.cfg.turn_min_yaw_deg
            return False
        return away <= self.cfg.turn_min_yaw_deg / 2.0


def start_challenge(cfg: LivenessConfig) -> BlinkChallenge | TurnChallenge | None:
    """A fresh challenge for one guard at the gate, or None when the config asks for none."""
    if cfg.challenge == "blink":
        return BlinkChallenge(cfg)
    if cfg.challenge == "turn":
        return TurnChallenge(cfg)
    return None


# MiniFASNet (Silent-Face-Anti-Spoofing) was trained on crops this many face boxes wide. Their boxes
# came from another detector; V2's scores on the samples held when dlib's box was scaled 0.9-1.1x.
ANTISPOOF_SCALES: dict[str, float] = {"minifasnet_v2": 2.7, "minifasnet_v1se": 4.0}
ANTISPOOF_INPUT_PX = 80
_REAL = 1  # of the 3 output classes, 1 is a real face; 0 and 2 are kinds of spoof


def antispoof_crop(rgb: np.ndarray, box: FaceBox, scale: float) -> np.ndarray:
    """The model's input patch: ``box`` scaled about its centre, kept inside the frame, 80x80, BGR uint8.

    Near a border the window slides inwards, and it shrinks when the frame is too small for it: this
    is how the training patches were cut (minivision's CropImage). Padding with black instead scored
    the real sample image_T1 0.000 with both models.
    """
    height, width = rgb.shape[:2]
    if box.width <= 0 or box.height <= 0:
        raise ValueError(f"empty face box {box}")
    scale = min(scale, (height - 1) / box.height, (width - 1) / box.width)
    crop_w, crop_h = box.width * scale, box.height * scale
    centre_x, centre_y = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left = min(max(centre_x - crop_w / 2, 0.0), width - crop_w)
    top = min(max(centre_y - crop_h / 2, 0.0), height - crop_h)
    patch = rgb[int(top) : int(top + crop_h), int(left) : int(left + crop_w), ::-1]
    size = (ANTISPOOF_INPUT_PX, ANTISPOOF_INPUT_PX)
    return cv2.resize(np.ascontiguousarray(patch), size, interpolation=cv2.INTER_LINEAR)


class AntiSpoof:
    """One MiniFASNet ONNX model in one single-threaded onnxruntime session (the gate has other work)."""

    def __init__(self, model_path: str | Path, kind: AntiSpoofKind = "minifasnet_v2") -> None:
        if kind not in ANTISPOOF_SCALES:
            raise ValueError(f"unknown anti-spoofing model kind {kind!r}; expected one of {sorted(ANTISPOOF_SCALES)}")
        self.model_path = Path(model_path)
        self.scale = ANTISPOOF_SCALES[kind]
        if not self.model_path.is_file():
            problem = "not a file" if self.model_path.exists() else "no such file"
            raise ValueError(f"anti-spoofing model {self.model_path}: {problem}")
        try:
            import onnxruntime  # here so the package imports on machines that never run this model
        except ImportError:
            raise ValueError(
                f"anti-spoofing model {self.model_path} needs onnxruntime: pip install onnxruntime"
            ) from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings would go to the terminal's stderr
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
            # "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from PATH failed:Protobuf parsing failed."
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            reason = lines[0].rsplit("failed:", 1)[-1].strip() or lines[0]
            raise ValueError(f"anti-spoofing model {self.model_path} cannot be loaded: {reason}") from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [3, ANTISPOOF_INPUT_PX, ANTISPOOF_INPUT_PX]:
            raise ValueError(
                f"anti-spoofing model {self.model_path} is not a MiniFASNet: it takes {[i.shape for i in inputs]}"
            )
        if len(outputs) != 1 or list(outputs[0].shape)[-1:] != [3]:
            raise ValueError(f"anti-spoofing model {self.model_path} is not a MiniFASNet: it gives {outputs[0].shape}")
        self._input_name = inputs[0].name

    @classmethod
    def from_config(cls, cfg: LivenessConfig) -> AntiSpoof | None:
        return None if cfg.antispoof_model is None else cls(cfg.antispoof_model, cfg.antispoof_kind)

    def real_score(self, rgb: np.ndarray, box: FaceBox) -> float:
        """Probability in [0, 1] that the face in ``box`` is a live face rather than a print or a screen."""
        patch = antispoof_crop(rgb, box, self.scale)
        # Raw 0-255 BGR, no normalisation: the training code's ToTensor had its /255 removed, and
        # dividing by 255 here makes every sample, real or spoof, score about 0.01 real.
        tensor = patch.astype(np.float32).transpose(2, 0, 1)[None]
        logits = np.asarray(self._session.run(None, {self._input_name: tensor})[0], dtype=np.float64).reshape(-1)
        exp = np.exp(logits - logits.max())
        score = float(exp[_REAL] / exp.sum())
        return score if math.isfinite(score) else 0.0  # NaN from a damaged model must refuse, not pass
