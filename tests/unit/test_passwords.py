"""Password policy and scrypt hashes."""

from __future__ import annotations

import pytest

from server.passwords import PasswordPolicyError, check_policy, hash_password, verify_password


@pytest.mark.parametrize(
    "password",
    ["short", "Password1234!", "changeme2026!!", "administrator1", "aaaaaaaaaaaaaaaa", "12121212121212", "x" * 300],
)
def test_weak_default_or_odd_passwords_are_refused(password):
    with pytest.raises(PasswordPolicyError):
        check_policy("alice", password)


def test_a_password_containing_the_user_name_is_refused():
    with pytest.raises(PasswordPolicyError, match="user name"):
        check_policy("alice", "Alice-likes-tea-42")


def test_a_good_password_passes_and_round_trips():
    check_policy("alice", "blue harbour 7 lanterns")
    stored = hash_password("blue harbour 7 lanterns")
    assert stored.startswith("scrypt$") and "blue" not in stored
    assert verify_password(stored, "blue harbour 7 lanterns")
    assert not verify_password(stored, "blue harbour 7 lantern")
    assert hash_password("blue harbour 7 lanterns") != stored  # salted


@pytest.mark.parametrize("stored", [None, "", "md5$abc", "scrypt$x$8$1$AA==$AA==", "scrypt$16384$8$1$!!$??"])
def test_missing_or_malformed_hashes_never_match(stored):
    assert not verify_password(stored, "anything at all")
