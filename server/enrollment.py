"""Enrolment from photos: quality gates, encode, store encrypted, and flag a face already enrolled as someone else."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from biometrics.faces import FaceEncoder
from biometrics.images import ImageError, load_image_rgb
from biometrics.sharpness import face_sharpness
from server.crypto import decrypt_template
from server.models import FaceTemplate, Finding
from server.registry import RegistryError, add_template

MIN_FACE_PX = 80
# Stricter than the gate's 40 (edge_agent.quality): an enrolment photo is taken with care and every
# later check-in is compared with it. Every face in the 46 labelled photos of ../shared/faces scored
# at least 137; Grace Hopper's portrait scores 1855 sharp, 52 after a Gaussian blur of sigma 3 and
# 46 after sigma 4 (both refused here, both still passed by the gate).
MIN_SHARPNESS = 80.0
# face_recognition's distances: the same person usually measures under 0.4 (Grace Hopper and her
# mirror image 0.15), different people over 0.6 (Grace Hopper and Eileen Collins 0.68). The gate
# accepts under 0.54; a tighter bound here would miss the very duplicates a gate could confuse.
DUPLICATE_DISTANCE = 0.5
DUPLICATE_KIND = "duplicate_identity"
# Detection runs on a copy this wide: the gate's 400 px finds none of the two faces in a 2000 px group
# photo (face_recognition's obama_and_biden.jpg) and one of two in a side-by-side portrait; 800 finds them.
ENROLMENT_DETECT_WIDTH = 800


class EnrollmentError(ValueError):
    """A photo that cannot be enrolled; the message tells the operator what to change."""


@dataclass(frozen=True)
class DuplicateMatch:
    """Another guard whose enrolled face is within the duplicate distance of the new template."""

    other_guard_id: str
    distance: float
    finding: Finding


@dataclass(frozen=True)
class Enrolment:
    template: FaceTemplate
    duplicates: list[DuplicateMatch] = field(default_factory=list)  # nearest first

    @property
    def warnings(self) -> list[str]:
        return [
            f"the face matches guard {d.other_guard_id} (distance {d.distance:.2f}); the template is stored and a "
            f"{DUPLICATE_KIND} finding is raised for supervisor review"
            for d in self.duplicates
        ]


def enroll_photo(
    session: Session,
    cipher: Fernet,
    encoder: FaceEncoder,
    guard_id: str,
    photo: Path,
    *,
    min_face_px: int = MIN_FACE_PX,
    min_sharpness: float = MIN_SHARPNESS,
    duplicate_distance: float = DUPLICATE_DISTANCE,
) -> Enrolment:
    """Enrol one photo; a face close to another guard's is stored anyway and raised as a finding, since
    only a person can tell twins from one person registered twice."""
    try:
        rgb = load_image_rgb(photo)
    except ImageError as exc:
        raise EnrollmentError(str(exc)) from None
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    return enroll_rgb(
        session,
        cipher,
        encoder,
        guard_id,
        rgb,
        photo.name,
        digest,
        min_face_px=min_face_px,
        min_sharpness=min_sharpness,
        duplicate_distance=duplicate_distance,
    )


def enroll_rgb(
    session: Session,
    cipher: Fernet,
    encoder: FaceEncoder,
    guard_id: str,
    rgb: np.ndarray,
    name: str,
    photo_sha256: str,
    *,
    min_face_px: int = MIN_FACE_PX,
    min_sharpness: float = MIN_SHARPNESS,
    duplicate_distance: float = DUPLICATE_DISTANCE,
) -> Enrolment:
    """Enrol a decoded photo (``name`` and its digest identify it in messages and findings)."""
    faces = encoder.count_faces(rgb)
    if faces != 1:
        raise EnrollmentError(f"{name}: found {faces} faces; an enrolment photo needs exactly one")
    box, template = encoder.largest_face(rgb)  # type: ignore[misc]
    if min(box.width, box.height) < min_face_px:
        raise EnrollmentError(
            f"{name}: the face is {min(box.width, box.height)} px; take the photo closer (at least {min_face_px} px)"
        )
    sharpness = face_sharpness(rgb, box)
    if sharpness < min_sharpness:
        raise EnrollmentError(
            f"{name}: the face is blurred (sharpness {sharpness:.0f}, at least {min_sharpness:.0f} needed); "
            "take a sharper photo with the camera held still and the face in focus"
        )
    try:
        row = add_template(session, cipher, guard_id, template, photo_sha256)
    except RegistryError as exc:
        raise EnrollmentError(str(exc)) from None
    matches = nearest_other_guards(session, cipher, guard_id, template, duplicate_distance)
    duplicates = [
        DuplicateMatch(other, distance, _raise_duplicate(session, guard_id, other, distance, duplicate_distance, name))
        for other, distance in matches
    ]
    return Enrolment(template=row, duplicates=duplicates)


def nearest_other_guards(
    session: Session, cipher: Fernet, guard_id: str, template: np.ndarray, within: float
) -> list[tuple[str, float]]:
    """Other guards with an enrolled template closer than ``within``, nearest first, each with its smallest distance."""
    rows = session.execute(
        select(FaceTemplate.guard_id, FaceTemplate.encrypted)
        .where(FaceTemplate.guard_id != guard_id)
        .order_by(FaceTemplate.id)
    ).all()
    if not rows:
        return []
    owners = np.array([owner for owner, _ in rows])
    gallery = np.stack([decrypt_template(cipher, blob) for _, blob in rows])
    distances = np.linalg.norm(gallery - np.asarray(template, dtype=np.float64), axis=1)
    guards, owner_index = np.unique(owners, return_inverse=True)
    nearest = np.full(len(guards), np.inf)
    np.minimum.at(nearest, owner_index, distances)  # each guard's closest template
    close = np.flatnonzero(nearest < within)
    return sorted(((str(guards[i]), float(nearest[i])) for i in close), key=lambda match: match[1])


def _raise_duplicate(
    session: Session, guard_id: str, other: str, distance: float, within: float, photo_name: str
) -> Finding:
    key = f"dup:{guard_id}:{other}"
    existing = session.scalar(select(Finding).where(Finding.key == key))
    if existing is not None:  # raised by an earlier photo; a resolved one stays resolved
        return existing
    finding = Finding(
        key=key,
        kind=DUPLICATE_KIND,
        severity="violation",
        guard_id=guard_id,
        detail=(
            f"guard {guard_id}'s enrolment photo {photo_name} matches the enrolled face of guard {other} "
            f"(distance {distance:.3f}, duplicate below {within:.2f}): one person may be registered "
            f"under two guard ids; compare both guards' ID documents before either works"
        ),
    )
    session.add(finding)
    session.flush()
    return finding
