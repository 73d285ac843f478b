"""Lookup digests of ID and credential numbers are keyed: same key same digest, another key another digest."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from server.lookup_digests import LookupKeys, ServerCipher, lookup_keys

ID_NUMBER = "11010519491231002X"
LOOKUP = ServerCipher(Fernet.generate_key()).lookup


def test_the_same_number_and_key_give_the_same_digest_and_another_key_another():
    key = Fernet.generate_key()
    one, again, other = ServerCipher(key).lookup, ServerCipher(key).lookup, ServerCipher(Fernet.generate_key()).lookup
    assert one.id_number(ID_NUMBER) == again.id_number(ID_NUMBER)
    assert one.id_number(ID_NUMBER) != other.id_number(ID_NUMBER)
    assert one.credential_number("GD2024123456") == again.credential_number("GD2024123456")
    assert one.credential_number("GD2024123456") != other.credential_number("GD2024123456")


def test_digests_are_hmac_under_hkdf_keys_of_the_server_key_not_bare_hashes():
    key = Fernet.generate_key()
    keys = ServerCipher(key).lookup
    assert keys == LookupKeys.derive(base64.urlsafe_b64decode(key))
    assert keys.id_number(ID_NUMBER) != hashlib.sha256(ID_NUMBER.encode()).hexdigest()
    assert len(keys.id_number(ID_NUMBER)) == 64
    # One key per kind of number: the same text digests differently as an ID number and as a credential.
    assert keys.resident_id != keys.credential
    assert keys.id_number(ID_NUMBER) != keys.credential_number(ID_NUMBER)
    assert base64.urlsafe_b64decode(key) not in (keys.resident_id, keys.credential)


def test_credential_numbers_are_normalised_first_and_bad_ones_refused():
    keys = ServerCipher(Fernet.generate_key()).lookup
    assert keys.credential_number(" gd2024123456\r\n") == keys.credential_number("GD2024123456")
    with pytest.raises(ValueError, match="contains '/'"):
        keys.credential_number("GD/2024")


@given(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True), st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True))
def test_different_numbers_give_different_digests(a, b):
    assert (LOOKUP.id_number(a) == LOOKUP.id_number(b)) == (a == b)


def test_the_keys_never_show_and_a_plain_fernet_has_none():
    cipher = ServerCipher(Fernet.generate_key())
    assert "resident_id=" not in repr(cipher.lookup) and cipher.lookup.resident_id.hex() not in repr(cipher.lookup)
    assert lookup_keys(cipher) is cipher.lookup
    with pytest.raises(TypeError, match="ServerCipher"):
        lookup_keys(Fernet(Fernet.generate_key()))
