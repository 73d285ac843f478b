"""Enrolment from photos: quality gate (exactly one usable face), encode, store encrypted."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from biometrics.faces import FaceEncoder
from biometrics.images import ImageError, load_image_rgb
from server.models import FaceTemplate
from server.registry import RegistryError, add_template

MIN_FACE_PX = 80


class EnrollmentError(ValueError):
    """A photo that cannot be enrolled; the message tells the operator what to change."""


def enroll_photo(session: Session, cipher: Fernet, encoder: FaceEncoder, guard_id: str, photo: Path) -> FaceTemplate:
    try:
        rgb = load_image_rgb(photo)
    except ImageError as exc:
        raise EnrollmentError(str(exc)) from None
    faces = encoder.count_faces(rgb)
    if faces != 1:
        raise EnrollmentError(f"{photo.name}: found {faces} faces; an enrolment photo needs exactly one")
    box, template = encoder.largest_face(rgb)  # type: ignore[misc]
    if min(box.width, box.height) < MIN_FACE_PX:
        raise EnrollmentError(
            f"{photo.name}: the face is {min(box.width, box.height)} px; "
            f"take the photo closer (at least {MIN_FACE_PX} px)"
        )
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    try:
        return add_template(session, cipher, guard_id, template, digest)
    except RegistryError as exc:
        raise EnrollmentError(str(exc)) from None
