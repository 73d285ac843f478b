"""Enrolment photo upload: good portraits are stored encrypted; hostile or useless files get a clear 4xx."""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
from cryptography.fernet import Fernet
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from guardpost.samples import astronaut_path, grace_hopper_path, no_face_rgb
from server import companies, registry, users
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.lookup_digests import ServerCipher
from server.models import FaceTemplate, SecurityEvent
from server.web import create_app

URL = "/api/v1/guards/G-1/photos"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes that claim to be a width x height picture (a decompression bomb's header)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body = png_chunk(b"IDAT", zlib.compress(b"\0" * 1024, 9))
    return b"\x89PNG\r\n\x1a\n" + header + body + png_chunk(b"IEND", b"")


def encoded(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=fmt)
    return out.getvalue()


def two_faces() -> bytes:
    left = Image.open(grace_hopper_path()).convert("RGB").resize((512, 600))
    right = Image.open(astronaut_path()).convert("RGB").resize((512, 512))
    canvas = Image.new("RGB", (1024, 600), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (512, 44))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=92)
    return out.getvalue()


class World:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        cipher = ServerCipher(Fernet.generate_key())
        self.app = create_app(ServerSettings(db_url=url), engine=self.engine, cipher=cipher)
        self.tokens: dict[str, str] = {}
        with self.sessions.begin() as s:
            companies.add_company(s, "acme", "Acme", home_province="44", filing_status="filed")
            companies.add_site(s, "north", "North", tz="Asia/Shanghai", company_id="acme", province="44")
            companies.add_site(s, "south", "South", tz="Asia/Shanghai", company_id="acme", province="44")
            registry.add_guard(s, "G-1", "Grace Hopper", ["north"], face_consent=True)
            registry.add_guard(s, "G-2", "No Consent", ["north"])
            scopes = {
                "manager": ("manager", {"company_id": "acme"}),
                "south": ("supervisor", {"site_ids": ["south"]}),
                "police": ("police", {"jurisdiction": "44"}),
            }
            for name, (role, scope) in scopes.items():
                _, self.tokens[name] = users.add_user(s, name, role, **scope)

    def upload(self, files: list[tuple[str, bytes]], who: str = "manager", url: str = URL):
        # Encoded in memory: the test client spools large bodies to a temporary file it never closes.
        fields = MultiDict([("photo", FileStorage(io.BytesIO(content), name)) for name, content in files])
        boundary, body = encode_multipart(fields)
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        content_type = f"multipart/form-data; boundary={boundary}"
        return self.app.test_client().post(url, data=body, headers=headers, content_type=content_type)

    def templates(self) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(FaceTemplate))


@pytest.fixture
def world(db_url):
    built = World(db_url)
    yield built
    built.engine.dispose()


def refusal(response) -> str:
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["stored"] == []
    return body["refused"][0]["error"]


@pytest.mark.slow
def test_a_portrait_is_enrolled_and_the_photo_not_kept(world):
    response = world.upload([("grace.jpg", grace_hopper_path().read_bytes())])
    assert response.status_code == 201, response.get_json()
    assert [p["photo"] for p in response.get_json()["stored"]] == ["grace.jpg"]
    assert world.templates() == 1


@pytest.mark.slow
def test_hostile_and_useless_files_are_refused_with_a_reason_and_recorded(world):
    assert "supported format" in refusal(world.upload([("notes.txt", b"just some text, not a photo")]))
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
    assert "supported format" in refusal(world.upload([("evil.eps", eps)]))  # never handed to Ghostscript
    assert "megapixels" in refusal(world.upload([("bomb.png", png_declaring(50_000, 50_000))]))
    assert "megapixels" in refusal(world.upload([("wide.png", png_declaring(1_000_000, 100))]))
    truncated = grace_hopper_path().read_bytes()[:5000]
    assert "cannot read image" in refusal(world.upload([("cut.jpg", truncated)]))
    assert "found 0 faces" in refusal(world.upload([("gate.png", encoded(no_face_rgb()))]))
    assert re.search(r"found [2-9] faces", refusal(world.upload([("two.jpg", two_faces())])))
    assert "larger than 12 MB" in refusal(world.upload([("huge.jpg", b"\xff\xd8" + b"\0" * (12 * 2**20 + 10))]))
    no_consent = world.upload([("grace.jpg", grace_hopper_path().read_bytes())], url="/api/v1/guards/G-2/photos")
    assert "consent" in refusal(no_consent)
    assert world.templates() == 0
    with world.sessions() as s:
        kinds = s.scalars(select(SecurityEvent.kind)).all()
    assert kinds.count("upload_refused") == 9


def test_too_many_or_no_photos_and_scope(world):
    tiny = encoded(no_face_rgb())
    assert world.upload([(f"{n}.png", tiny) for n in range(6)]).status_code == 413
    assert world.upload([]).status_code == 400
    assert world.upload([("a.png", tiny)], url="/api/v1/guards/nobody/photos").status_code == 404
    assert world.upload([("a.png", tiny)], who="south").status_code == 403  # G-1 is posted at north
    assert world.upload([("a.png", tiny)], who="police").status_code == 403  # read-only
