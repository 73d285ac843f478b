"""Migration 0008: a registry with unkeyed digests is re-keyed with the server key, and lookups keep working."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, insert, select

from protocol.cards import card_digest, resident_id_check_character
from server import companies, registry
from server.config import ConfigError, normalise_db_url
from server.credentials import add_credential, site_cards
from server.db import make_sessionmaker
from server.guard_records import guard_by_id_number
from server.importer import ImportRejected, import_guards
from server.lookup_digests import ServerCipher
from server.migrate import current_revision, upgrade
from server.models import Credential, Guard, Site
from server.registry import RegistryError

CARD = "GD2024123456"


def resident_id(sequence: int) -> str:
    first17 = f"44030519900101{sequence:03d}"
    return first17 + resident_id_check_character(first17)


@pytest.fixture
def old_registry(db_url, monkeypatch):
    """A database at revision 0002 holding what the code of then wrote: encrypted numbers, unkeyed SHA-256."""
    monkeypatch.delenv("GUARDPOST_KEY_FILE", raising=False)
    monkeypatch.delenv("GUARDPOST_KEY", raising=False)
    key = Fernet.generate_key()
    cipher = Fernet(key)
    engine = create_engine(normalise_db_url(db_url))
    upgrade(engine, "0002")
    number = resident_id(1)
    with engine.begin() as conn:
        conn.execute(insert(Site.__table__).values(site_id="riverside", name="Riverside", timezone="UTC"))
        conn.execute(
            insert(Guard.__table__).values(
                guard_id="G-1",
                name="张伟",
                id_number_encrypted=cipher.encrypt(number.encode()),
                id_number_sha256=hashlib.sha256(number.encode()).hexdigest(),
                id_number_masked="440305********" + number[-4:],
            )
        )
        conn.execute(
            insert(Credential.__table__).values(
                guard_id="G-1",
                kind="card",
                number_masked="GD******3456",
                number_digest_sha256=hashlib.sha256(CARD.encode()).hexdigest(),
                number_encrypted=cipher.encrypt(CARD.encode()),
            )
        )
    yield engine, key, number
    engine.dispose()


def digests(engine) -> tuple[str, str]:
    with engine.connect() as conn:
        return conn.scalar(select(Guard.id_number_hmac)), conn.scalar(select(Credential.number_hmac))


def test_without_the_key_the_upgrade_stops_with_one_line_and_changes_nothing(old_registry):
    engine, _key, _number = old_registry
    before = digests(engine)
    with pytest.raises(ConfigError) as caught:
        upgrade(engine)
    message = str(caught.value)
    assert message.startswith("migration 0008 re-keys the lookup digests of 1 ID number(s) and 1 credential number(s)")
    assert "GUARDPOST_KEY_FILE" in message and "\n" not in message
    assert current_revision(engine) == "0002" and digests(engine) == before


def test_a_wrong_key_is_refused_and_changes_nothing(old_registry, monkeypatch):
    engine, _key, _number = old_registry
    before = digests(engine)
    monkeypatch.setenv("GUARDPOST_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="does not decrypt the number of guard G-1"):
        upgrade(engine)
    assert current_revision(engine) == "0002" and digests(engine) == before


def test_with_the_key_digests_are_rekeyed_and_lookups_work(old_registry, monkeypatch):
    engine, key, number = old_registry
    monkeypatch.setenv("GUARDPOST_KEY", key.decode())
    upgrade(engine)
    cipher = ServerCipher(key)
    assert digests(engine) == (cipher.lookup.id_number(number), cipher.lookup.credential_number(CARD))
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        assert guard_by_id_number(s, cipher, number).guard_id == "G-1"
        # Duplicate ID detection, by hand and by import.
        with pytest.raises(RegistryError, match="is already registered to guard G-1"):
            registry.add_guard(s, "G-2", "李娜", ["riverside"], cipher=cipher, id_number=number)
        s.rollback()
        rows = f"guard_id,name,id_number\r\nG-3,王芳,{number}\r\n".encode()
        with pytest.raises(ImportRejected) as caught:
            import_guards(s, cipher, rows, "guards.csv", today=date(2025, 6, 1))
        assert [(e.line, e.column) for e in caught.value.errors] == [(2, "id_number")]
        s.rollback()
        # The card is still G-1's: nobody else may register it, and the gate's gallery digest is unchanged.
        registry.add_guard(s, "G-4", "赵磊", ["riverside"], cipher=cipher)
        with pytest.raises(RegistryError, match="already registered to guard G-1"):
            add_credential(s, cipher, "G-4", " gd2024123456 ")
        s.rollback()
        salt = s.get(Site, "riverside").card_salt
        assert site_cards(s, cipher, ["G-1"], salt).digests == {"G-1": [card_digest(CARD, salt)]}
        # New guards and imports go on working with keyed digests.
        companies.add_site(s, "depot", "Depot", tz="UTC")
        import_guards(s, cipher, f"guard_id,name,id_number\r\nG-5,王芳,{resident_id(5)}\r\n".encode(), "g.csv")
        s.commit()
        assert guard_by_id_number(s, cipher, resident_id(5)).guard_id == "G-5"


def test_downgrade_restores_the_unkeyed_digests(old_registry, monkeypatch):
    engine, key, _number = old_registry
    before = digests(engine)
    monkeypatch.setenv("GUARDPOST_KEY", key.decode())
    upgrade(engine)
    assert digests(engine) != before
    from alembic import command

    from server.migrate import alembic_config

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert digests(engine) == before


def test_an_empty_registry_upgrades_without_a_key(db_url, monkeypatch):
    monkeypatch.delenv("GUARDPOST_KEY_FILE", raising=False)
    monkeypatch.delenv("GUARDPOST_KEY", raising=False)
    engine = create_engine(normalise_db_url(db_url))
    try:
        upgrade(engine)
        assert current_revision(engine) == "0008"
    finally:
        engine.dispose()


def test_guardpost_db_upgrade_says_what_is_missing(old_registry, db_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDPOST_")} | {"GUARDPOST_DB": db_url}
    out = subprocess.run(
        [sys.executable, "-m", "guardpost", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: migration 0008 re-keys the lookup digests") and out.stderr.count("\n") == 1
