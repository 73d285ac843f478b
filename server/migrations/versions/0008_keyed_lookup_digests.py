"""keyed lookup digests of ID and credential numbers

The registry's digests of resident ID numbers (guards.id_number_sha256) and of certificate and card
numbers (credentials.number_digest_sha256) were unkeyed SHA-256; they become HMAC-SHA256 with keys
derived from the server key (server/lookup_digests.py). The columns keep their names. The numbers are
stored encrypted, so re-keying decrypts each one with the server key: with rows to convert, the upgrade
needs GUARDPOST_KEY_FILE (or GUARDPOST_KEY) and stops with a one-line error without it; an empty
registry needs no key. All rows change in the upgrade's one transaction, or none do.

Revision ID: 0008
Revises: 0009
Create Date: 2026-11-24 19:30:00
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import InvalidToken

from server.config import ConfigError

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None

CHUNK = 1000

# (table, key column, digest column, encrypted column, what, kind of number)
TABLES = (
    ("guards", "guard_id", "id_number_sha256", "id_number_encrypted", "guard", "id"),
    ("credentials", "id", "number_digest_sha256", "number_encrypted", "credential", "credential"),
)


def upgrade() -> None:
    _rewrite(lambda keys: {"id": keys.id_number, "credential": keys.credential_number})


def downgrade() -> None:
    from protocol.cards import normalise_card_number

    def unkeyed(number: str) -> str:
        return hashlib.sha256(number.encode("ascii")).hexdigest()

    _rewrite(lambda _keys: {"id": unkeyed, "credential": lambda n: unkeyed(normalise_card_number(n))})


def _rewrite(digesters: Callable[..., dict[str, Callable[[str], str]]]) -> None:
    connection = op.get_bind()
    rows = {
        table: connection.execute(
            sa.text(f"SELECT {key}, {encrypted} FROM {table} WHERE {encrypted} IS NOT NULL ORDER BY {key}")
        ).all()
        for table, key, _digest, encrypted, _what, _kind in TABLES
    }
    total = sum(len(found) for found in rows.values())
    if total == 0:
        return  # nothing to re-key: no key needed
    from server.crypto import load_cipher

    try:
        cipher = load_cipher()
    except ConfigError as exc:
        raise ConfigError(
            f"migration 0008 re-keys the lookup digests of {len(rows['guards'])} ID number(s) and "
            f"{len(rows['credentials'])} credential number(s) and needs the server key they were stored with: {exc}"
        ) from None
    digest = digesters(cipher.lookup)
    done = 0
    for table, key, digest_column, _encrypted, what, kind in TABLES:
        update = sa.text(f"UPDATE {table} SET {digest_column} = :digest WHERE {key} = :key")
        found = rows[table]
        for start in range(0, len(found), CHUNK):
            params = []
            for row_key, blob in found[start : start + CHUNK]:
                try:
                    number = cipher.decrypt(bytes(blob)).decode("ascii")
                except InvalidToken:
                    raise ConfigError(
                        f"migration 0008: the server key does not decrypt the number of {what} {row_key}; "
                        "set GUARDPOST_KEY_FILE to the key the numbers were stored with"
                    ) from None
                params.append({"digest": digest[kind](number), "key": row_key})
            connection.execute(update, params)
            done += len(params)
            print(f"re-keying lookup digests: {done}/{total}", file=sys.stderr, flush=True)
