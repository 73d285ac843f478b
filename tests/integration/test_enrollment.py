"""Enrolment on real faces: the same face under two guard ids raises a finding; blurred photos are refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.fernet import Fernet
from PIL import Image
from sqlalchemy import select

from biometrics.faces import FaceEncoder
from biometrics.images import load_image_rgb
from guardpost.samples import astronaut_path, grace_hopper_path
from server import registry
from server.db import make_engine, make_sessionmaker
from server.enrollment import EnrollmentError, enroll_photo
from server.lookup_digests import ServerCipher
from server.models import FaceTemplate, Finding

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    return FaceEncoder()


@pytest.fixture
def sessions(db_url: str):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        for guard_id, name in (("G-1", "Grace"), ("G-2", "Not Grace"), ("G-3", "Eileen")):
            registry.add_guard(s, guard_id, name, ["hq"], face_consent=True)
    yield sessions
    engine.dispose()


def photo(tmp_path: Path, name: str, rgb: np.ndarray) -> Path:
    path = tmp_path / name
    Image.fromarray(rgb).save(path, quality=95)
    return path


def test_the_same_face_under_two_guard_ids_raises_a_finding(sessions, encoder, tmp_path) -> None:
    cipher = ServerCipher(Fernet.generate_key())
    flipped = photo(tmp_path, "flipped.jpg", np.ascontiguousarray(load_image_rgb(grace_hopper_path())[:, ::-1]))
    with sessions.begin() as s:
        first = enroll_photo(s, cipher, encoder, "G-1", grace_hopper_path())
        assert first.duplicates == [] and first.warnings == []
        collins = enroll_photo(s, cipher, encoder, "G-3", astronaut_path())
        assert collins.duplicates == []  # a different person, 0.68 away
        second = enroll_photo(s, cipher, encoder, "G-2", flipped)
        [match] = second.duplicates
        assert match.other_guard_id == "G-1" and match.distance < 0.3
        assert second.warnings == [
            f"the face matches guard G-1 (distance {match.distance:.2f}); the template is stored and a "
            "duplicate_identity finding is raised for supervisor review"
        ]
        again = enroll_photo(s, cipher, encoder, "G-2", flipped)  # a second photo raises nothing new
        assert again.duplicates[0].finding.id == match.finding.id
    with sessions() as s:
        [finding] = s.scalars(select(Finding)).all()
        assert (finding.key, finding.kind, finding.severity, finding.guard_id) == (
            "dup:G-2:G-1",
            "duplicate_identity",
            "violation",
            "G-2",
        )
        assert "G-2" in finding.detail and "G-1" in finding.detail and f"{match.distance:.3f}" in finding.detail
        # Stored anyway: only a supervisor can tell one person registered twice from twins.
        assert len(s.scalars(select(FaceTemplate).where(FaceTemplate.guard_id == "G-2")).all()) == 2


def test_the_duplicate_distance_is_configurable(sessions, encoder) -> None:
    cipher = ServerCipher(Fernet.generate_key())
    with sessions.begin() as s:
        enroll_photo(s, cipher, encoder, "G-1", grace_hopper_path())
        loose = enroll_photo(s, cipher, encoder, "G-3", astronaut_path(), duplicate_distance=0.75)
        assert [d.other_guard_id for d in loose.duplicates] == ["G-1"]


def test_blurred_and_small_faces_are_refused(sessions, encoder, tmp_path) -> None:
    cipher = ServerCipher(Fernet.generate_key())
    rgb = load_image_rgb(grace_hopper_path())
    blurred = photo(tmp_path, "blurred.png", cv2.GaussianBlur(rgb, (0, 0), 4))
    small = photo(tmp_path, "small.png", cv2.resize(rgb, (128, 150), interpolation=cv2.INTER_AREA))
    with sessions.begin() as s:
        with pytest.raises(EnrollmentError, match=r"^blurred.png: the face is blurred \(sharpness \d+, at least 80"):
            enroll_photo(s, cipher, encoder, "G-1", blurred)
        with pytest.raises(EnrollmentError, match=r"^small.png: (the face is \d+ px|found 0 faces)"):
            enroll_photo(s, cipher, encoder, "G-1", small)
        assert enroll_photo(s, cipher, encoder, "G-1", blurred, min_sharpness=20).template.guard_id == "G-1"
