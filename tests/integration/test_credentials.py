"""Guard credentials on a real database: registration, uniqueness, and card digests in the site gallery."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date, timedelta

import numpy as np
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from protocol.cards import card_digest
from protocol.gallery import DEVICE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_gallery
from protocol.signing import request_signature
from server import registry
from server.config import ServerSettings
from server.credentials import add_credential, credential_number, guard_credentials
from server.db import make_engine, make_sessionmaker
from server.lookup_digests import ServerCipher
from server.models import Credential, Site
from server.registry import RegistryError
from server.web import create_app

CARD = "GD2024123456"
RESIDENT_ID = "11010519491231002X"


class Registry:
    """Site hq (terminal gate-1) with guards g1 (face and card), g2 (card only); g3 is posted to depot."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.cipher = ServerCipher(Fernet.generate_key())
        with self.sessions.begin() as s:
            _, self.secret = registry.add_device(s, "hq", "gate-1")
            registry.add_guard(s, "g1", "Alice", sites=["hq"], face_consent=True)
            registry.add_guard(s, "g2", "Bob", sites=["hq"])
            registry.add_guard(s, "g3", "Carol", sites=["depot"])
            registry.add_template(s, self.cipher, "g1", np.random.default_rng(1).normal(size=128), "ab" * 32)

    def add(self, guard_id: str, number: str, **kwargs) -> Credential:
        with self.sessions.begin() as s:
            return add_credential(s, self.cipher, guard_id, number, **kwargs)

    def gallery(self, site_id: str = "hq") -> dict:
        with self.sessions() as s:
            return registry.site_gallery(s, self.cipher, site_id)

    def salt(self, site_id: str = "hq") -> str:
        with self.sessions() as s:
            return s.get(Site, site_id).card_salt


@pytest.fixture
def reg(db_url: str):
    built = Registry(db_url)
    yield built
    built.engine.dispose()


def test_credential_stores_masked_number_hash_and_ciphertext_only(reg: Registry) -> None:
    reg.add("g1", " gd2024123456\r\n", valid_until=date(2030, 1, 31))
    with reg.sessions() as s:
        [row] = guard_credentials(s, "g1")
        assert (row.kind, row.number_masked, row.valid_until) == ("card", "GD******3456", date(2030, 1, 31))
        assert row.number_hmac == reg.cipher.lookup.credential_number(CARD)
        assert row.number_hmac != hashlib.sha256(CARD.encode()).hexdigest()  # keyed, not a bare hash
        assert CARD.encode() not in row.number_encrypted
        assert credential_number(reg.cipher, row) == CARD


def test_resident_id_is_masked_keeping_area_code(reg: Registry) -> None:
    row = reg.add("g1", RESIDENT_ID.lower(), kind="certificate")
    assert row.number_masked == "110105********002X"


def test_duplicate_number_is_refused_with_a_clear_message(reg: Registry) -> None:
    reg.add("g1", CARD)
    with pytest.raises(RegistryError, match=r"^card GD\*{6}3456 is already registered to guard g1$") as caught:
        reg.add("g2", "gd-2024123456".replace("-", ""))
    assert CARD not in str(caught.value)
    with pytest.raises(RegistryError, match="already registered to guard g1 as a card"):
        reg.add("g2", CARD, kind="certificate")
    reg.add("g1", CARD, kind="certificate")  # the same guard's certificate may carry the card's number


def test_bad_requests_are_refused(reg: Registry) -> None:
    with pytest.raises(RegistryError, match="no guard g9"):
        reg.add("g9", CARD)
    with pytest.raises(RegistryError, match="kind 'badge' is not one of certificate, card"):
        reg.add("g1", CARD, kind="badge")
    with pytest.raises(RegistryError, match=r"card number refused: card number contains '/'"):
        reg.add("g1", "GD/2024")


def test_database_enforces_uniqueness_per_kind(reg: Registry) -> None:
    reg.add("g1", CARD)
    with pytest.raises(IntegrityError), reg.sessions.begin() as s:
        row = s.scalar(select(Credential))
        s.add(
            Credential(
                guard_id="g2",
                kind="card",
                number_masked=row.number_masked,
                number_hmac=row.number_hmac,
                number_encrypted=row.number_encrypted,
            )
        )


def test_gallery_serves_card_digests_with_the_site_salt(reg: Registry) -> None:
    reg.add("g1", CARD)
    reg.add("g2", "CARD-0002")
    reg.add("g3", "CARD-0003")  # posted to depot
    document = reg.gallery()
    gallery = parse_gallery(document)
    salt = reg.salt()
    assert len(salt) == 32 and document["card_salt"] == salt
    assert gallery.cards == {card_digest(CARD, salt): "g1", card_digest("CARD-0002", salt): "g2"}
    assert set(gallery.templates) == {"g1"}
    # g2 has a card and no face: a card terminal needs it anyway.
    bob = next(entry for entry in document["guards"] if entry["guard_id"] == "g2")
    assert bob["templates"] == [] and gallery.names["g2"] == "Bob"


def test_sites_have_their_own_salt_and_digests(reg: Registry) -> None:
    reg.add("g3", "CARD-0003")
    assert reg.salt("hq") != reg.salt("depot")
    depot = parse_gallery(reg.gallery("depot"))
    assert depot.cards == {card_digest("CARD-0003", reg.salt("depot")): "g3"}
    assert card_digest("CARD-0003", reg.salt("hq")) not in depot.cards


def test_expired_credentials_are_not_served(reg: Registry) -> None:
    yesterday = date.today() - timedelta(days=2)
    reg.add("g2", "CARD-0002", valid_until=yesterday)
    reg.add("g1", CARD, valid_until=date.today() + timedelta(days=30))
    gallery = parse_gallery(reg.gallery())
    assert set(gallery.cards.values()) == {"g1"} and "g2" not in gallery.names


def test_gallery_version_changes_with_cards(reg: Registry) -> None:
    before = reg.gallery()["version"]
    assert reg.gallery()["version"] == before
    reg.add("g1", CARD)
    assert reg.gallery()["version"] != before


def test_clear_number_never_reaches_the_terminal(reg: Registry, db_url: str) -> None:
    reg.add("g1", CARD)
    reg.add("g2", RESIDENT_ID, kind="certificate")
    app = create_app(ServerSettings(db_url=db_url), engine=reg.engine, cipher=reg.cipher)
    ts = str(int(time.time()))
    signature = request_signature(reg.secret, "GET", "/api/v1/terminal/gallery", ts)
    response = app.test_client().get(
        "/api/v1/terminal/gallery", headers={DEVICE_HEADER: "gate-1", TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}
    )
    assert response.status_code == 200, response.get_json()
    text = json.dumps(response.get_json())
    for clear in (CARD, RESIDENT_ID, "2024123456", "19491231"):
        assert clear not in text
    assert set(parse_gallery(response.get_json()).cards.values()) == {"g1", "g2"}
