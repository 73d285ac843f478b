"""Gallery sync document: the face templates and card digests a terminal needs, served to it over HTTPS."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GALLERY_SCHEMA = "guardpost.gallery.v1"
TEMPLATE_DIM = 128

DEVICE_HEADER = "X-GuardPost-Device"
TIMESTAMP_HEADER = "X-GuardPost-Timestamp"
SIGNATURE_HEADER = "X-GuardPost-Signature"
MAX_CLOCK_SKEW_S = 300

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class GalleryError(ValueError):
    """A gallery document that does not follow guardpost.gallery.v1."""


@dataclass
class Gallery:
    site_id: str
    version: str
    # Only guards with at least one template: card-only guards have a name and cards but no entry here.
    templates: dict[str, np.ndarray] = field(default_factory=dict)  # guard_id -> (n, 128) float64, n >= 1
    names: dict[str, str] = field(default_factory=dict)  # every guard in the document
    cards: dict[str, str] = field(default_factory=dict)  # card_digest(number, card_salt) -> guard_id
    card_salt: str = ""


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


def build_gallery(
    site_id: str,
    version: str,
    guards: list[tuple[str, str, list[np.ndarray]]],
    cards: Mapping[str, Sequence[str]] | None = None,
    card_salt: str = "",
) -> dict[str, Any]:
    """``guards`` is a list of (guard_id, name, templates); ``cards`` maps guard_id to card digests.

    A guard is served when it has a template or a card; card-only terminals need the card-only guards.
    """
    cards = cards or {}
    if any(cards.values()) and not card_salt:
        raise GalleryError("a gallery with cards must carry the card_salt the digests were made with")
    owners: dict[str, str] = {}
    entries = []
    for gid, name, templates in guards:
        digests = sorted(set(cards.get(gid, ())))
        if not templates and not digests:
            continue
        for digest in digests:
            _check_digest(digest, gid)
            if owners.setdefault(digest, gid) != gid:
                raise GalleryError(f"one card digest belongs to both {owners[digest]} and {gid}")
        entry: dict[str, Any] = {"guard_id": gid, "name": name, "templates": [_encode_template(t) for t in templates]}
        if digests:
            entry["cards"] = digests
        entries.append(entry)
    return {"schema": GALLERY_SCHEMA, "site_id": site_id, "version": version, "card_salt": card_salt, "guards": entries}


def _check_digest(digest: Any, guard_id: str) -> None:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise GalleryError(f"guard {guard_id} has a card digest that is not 64 lowercase hex characters")


def parse_gallery(data: Any) -> Gallery:
    if not isinstance(data, dict) or data.get("schema") != GALLERY_SCHEMA:
        raise GalleryError(f"gallery schema must be {GALLERY_SCHEMA!r}")
    site_id, version, guards = data.get("site_id"), data.get("version"), data.get("guards")
    if not isinstance(site_id, str) or not isinstance(version, str) or not isinstance(guards, list):
        raise GalleryError("gallery needs site_id, version and a list of guards")
    # Documents from servers that predate cards carry no card_salt.
    card_salt = data.get("card_salt", "")
    if not isinstance(card_salt, str):
        raise GalleryError("card_salt must be a string")
    gallery = Gallery(site_id=site_id, version=version, card_salt=card_salt)
    for entry in guards:
        if not isinstance(entry, dict) or not isinstance(entry.get("guard_id"), str):
            raise GalleryError("each gallery entry needs a guard_id")
        guard_id = entry["guard_id"]
        templates, cards = entry.get("templates", []), entry.get("cards", [])
        if not isinstance(templates, list) or not isinstance(cards, list):
            raise GalleryError(f"guard {guard_id}: templates and cards must be lists")
        if not templates and not cards:
            raise GalleryError(f"guard {guard_id} has neither templates nor cards")
        if cards and not card_salt:
            raise GalleryError(f"guard {guard_id} has cards but the gallery carries no card_salt")
        if templates:
            gallery.templates[guard_id] = np.stack([_decode_template(t) for t in templates])
        for digest in cards:
            _check_digest(digest, guard_id)
            # An ambiguous card must not open the gate for whichever guard happens to come last.
            if gallery.cards.setdefault(digest, guard_id) != guard_id:
                raise GalleryError(f"one card digest belongs to both {gallery.cards[digest]} and {guard_id}")
        gallery.names[guard_id] = str(entry.get("name", ""))
    return gallery
