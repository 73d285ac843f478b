"""Password hashing (scrypt, from the standard library) and the policy every new password must meet."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: ~50 ms per check on a server core, 16 MiB of memory; stored with the hash so it can grow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_LENGTH = 12
MAX_LENGTH = 256

# Passwords that installers, vendors and people reach for first; refused whatever their length.
KNOWN_DEFAULTS = frozenset(
    {
        "admin",
        "administrator",
        "password",
        "changeme",
        "guardpost",
        "letmein",
        "welcome",
        "qwerty",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "000000",
        "111111",
        "888888",
        "666666",
        "admin123",
        "password123",
        "passw0rd",
        "p@ssw0rd",
        "iloveyou",
        "a123456",
        "woaini1314",
    }
)


class PasswordPolicyError(ValueError):
    """A new password that is refused; the message says why."""


def check_policy(user_name: str, password: str) -> None:
    """Refuse short, overlong, default-looking or name-derived passwords."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"the password must have at most {MAX_LENGTH} characters")
    folded = password.casefold()
    stem = folded.rstrip("0123456789!@#$%^&*.")
    if folded in KNOWN_DEFAULTS or stem in KNOWN_DEFAULTS or len(set(folded)) < 4:
        raise PasswordPolicyError("the password is a well-known default or too repetitive; choose another")
    if user_name and user_name.casefold() in folded:
        raise PasswordPolicyError("the password must not contain the user name")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


# Checked against when the user is unknown, so a login takes as long whether or not the name exists.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a missing or malformed hash never matches."""
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8")[: MAX_LENGTH * 4],
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return stored is not None and hmac.compare_digest(actual, expected)
