"""Keyed lookup digests of resident ID and credential numbers: HMAC-SHA256 under keys derived from the server key.

The registry finds a person by ID number, and a certificate or card by its number, without decrypting
every row: it compares digests. An unkeyed SHA-256 of an 18-digit ID number is no protection (there are
only some 10^11 plausible numbers: birth date, area code and sequence), so anyone with a copy of the
database could recover them all. Keyed with a secret that lives outside the database, the digests say
nothing without it. The keys come from the server key (GUARDPOST_KEY / GUARDPOST_KEY_FILE, which also
encrypts the numbers) by HKDF-SHA256, one per kind of number, so a digest of one kind never matches the
other and the key itself is never used for two things.

These are not the digests in a site's gallery: terminals look cards up by HMAC(site card_salt, number)
(protocol/cards.py), a separate scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.cards import normalise_card_number

_ID_INFO = b"guardpost lookup digest: resident ID number v1"
_CREDENTIAL_INFO = b"guardpost lookup digest: credential number v1"


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


@dataclass(frozen=True)
class LookupKeys:
    """The two lookup keys; ``repr`` shows neither."""

    resident_id: bytes = field(repr=False)
    credential: bytes = field(repr=False)

    @classmethod
    def derive(cls, master: bytes) -> LookupKeys:
        """From the server key's bytes (the 32 bytes a Fernet key encodes)."""
        if len(master) < 32:
            raise ValueError("the server key must hold at least 32 bytes")
        return cls(_derive(master, _ID_INFO), _derive(master, _CREDENTIAL_INFO))

    def id_number(self, number: str) -> str:
        """Digest of a validated resident ID number (18 characters, upper-case X): one person, one guard."""
        return hmac.new(self.resident_id, number.encode("ascii"), hashlib.sha256).hexdigest()

    def credential_number(self, number: str) -> str:
        """Digest of a certificate or card number, normalised first (ValueError if it is not a valid number)."""
        return hmac.new(self.credential, normalise_card_number(number).encode("ascii"), hashlib.sha256).hexdigest()


class ServerCipher(Fernet):
    """The server key: a Fernet for what is stored encrypted, and the lookup keys derived from it."""

    def __init__(self, key: bytes | str):
        super().__init__(key)
        self.lookup = LookupKeys.derive(_key_bytes(key))


def _key_bytes(key: bytes | str) -> bytes:
    return base64.urlsafe_b64decode(key.encode("ascii") if isinstance(key, str) else key)


def lookup_keys(cipher: Fernet) -> LookupKeys:
    """The lookup keys of a server key loaded with ``server.crypto.load_cipher`` (or made as ``ServerCipher``)."""
    if not isinstance(cipher, ServerCipher):
        raise TypeError("lookup digests need the server key as a ServerCipher (server.crypto.load_cipher)")
    return cipher.lookup
