"""Gallery sync document: the face templates a terminal needs, served to it over HTTPS."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GALLERY_SCHEMA = "guardpost.gallery.v1"
TEMPLATE_DIM = 128

DEVICE_HEADER = "X-GuardPost-Device"
TIMESTAMP_HEADER = "X-GuardPost-Timestamp"
SIGNATURE_HEADER = "X-GuardPost-Signature"
MAX_CLOCK_SKEW_S = 300


class GalleryError(ValueError):
    """A gallery document that does not follow guardpost.gallery.v1."""


@dataclass
class Gallery:
    site_id: str
    version: str
    templates: dict[str, np.ndarray] = field(default_factory=dict)  # guard_id -> (n, 128) float64
    names: dict[str, str] = field(default_factory=dict)


def _encode_template(template: np.ndarray) -> str:
    arr = np.asarray(template, dtype="<f8")
    if arr.shape != (TEMPLATE_DIM,):
        raise GalleryError(f"a template must have {TEMPLATE_DIM} values, got shape {arr.shape}")
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _decode_template(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise GalleryError("a template is not valid base64") from None
    if len(raw) != TEMPLATE_DIM * 8:
        raise GalleryError(f"a template must be {TEMPLATE_DIM} float64 values")
    return np.frombuffer(raw, dtype="<f8").copy()


def build_gallery(site_id: str, version: str, guards: list[tuple[str, str, list[np.ndarray]]]) -> dict[str, Any]:
    """``guards`` is a list of (guard_id, name, templates)."""
    return {
        "schema": GALLERY_SCHEMA,
        "site_id": site_id,
        "version": version,
        "guards": [
            {"guard_id": gid, "name": name, "templates": [_encode_template(t) for t in templates]}
            for gid, name, templates in guards
            if templates
        ],
    }


def parse_gallery(data: Any) -> Gallery:
    if not isinstance(data, dict) or data.get("schema") != GALLERY_SCHEMA:
        raise GalleryError(f"gallery schema must be {GALLERY_SCHEMA!r}")
    site_id, version, guards = data.get("site_id"), data.get("version"), data.get("guards")
    if not isinstance(site_id, str) or not isinstance(version, str) or not isinstance(guards, list):
        raise GalleryError("gallery needs site_id, version and a list of guards")
    gallery = Gallery(site_id=site_id, version=version)
    for entry in guards:
        if not isinstance(entry, dict) or not isinstance(entry.get("guard_id"), str):
            raise GalleryError("each gallery entry needs a guard_id")
        templates = entry.get("templates")
        if not isinstance(templates, list) or not templates:
            raise GalleryError(f"guard {entry['guard_id']} has no templates")
        gallery.templates[entry["guard_id"]] = np.stack([_decode_template(t) for t in templates])
        gallery.names[entry["guard_id"]] = str(entry.get("name", ""))
    return gallery
