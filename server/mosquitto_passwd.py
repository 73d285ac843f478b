"""Mosquitto password files: entries in Mosquitto 2's own $7$ PBKDF2-SHA512 format, updated atomically."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# mosquitto_passwd 2.0 uses 101 iterations; Mosquitto reads the count from each entry, so more is accepted and
# makes a stolen file slower to attack. 1000 costs the broker about a millisecond per connection.
ITERATIONS = 1000
SALT_BYTES = 12  # what mosquitto_passwd uses


class PasswordFileError(ValueError):
    """A password file that cannot be read or updated."""


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, entry: str) -> bool:
    """Check a password against a $7$ hash, as Mosquitto does."""
    try:
        _empty, kind, iterations, salt, digest = entry.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def parse_entries(text: str) -> dict[str, str]:
    """Username -> hash; blank lines and # comments are skipped, as Mosquitto does."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, hashed = line.partition(":")
        if not sep or not username:
            raise PasswordFileError(f"line {number} is not username:hash")
        entries[username] = hashed
    return entries


def with_entry(text: str, username: str, hashed: str) -> str:
    """The file's text with ``username``'s entry replaced (in place) or appended; other lines untouched."""
    if not username or ":" in username or any(ch.isspace() for ch in username):
        raise PasswordFileError(f"username {username!r} cannot go into a Mosquitto password file")
    lines, replaced = [], False
    for line in text.splitlines():
        if line.strip().partition(":")[0] == username and not line.lstrip().startswith("#"):
            if not replaced:
                lines.append(f"{username}:{hashed}")
            replaced = True
            continue
        lines.append(line)
    if not replaced:
        lines.append(f"{username}:{hashed}")
    return "\n".join(lines) + "\n"


def read_entries(path: Path) -> dict[str, str]:
    try:
        return parse_entries(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise PasswordFileError(f"cannot read the broker password file {path}: {exc.strerror}") from None
    except PasswordFileError as exc:
        raise PasswordFileError(f"broker password file {path}: {exc}") from None


def set_password(path: Path, username: str, password: str) -> None:
    """Write or replace one user's entry; concurrent writers take turns and the broker never sees half a file."""
    with locked(path):
        try:
            text = path.read_text(encoding="utf-8")
            mode, group = _mode_and_group(path)
        except FileNotFoundError:
            text, mode, group = "", 0o640, None
        except OSError as exc:
            raise PasswordFileError(f"cannot read the broker password file {path}: {exc.strerror}") from None
        try:
            parse_entries(text)
        except PasswordFileError as exc:
            raise PasswordFileError(f"broker password file {path}: {exc}; fix it by hand first") from None
        write_private(path, with_entry(text, username, hash_password(password)).encode(), mode=mode, group=group)


def write_private(path: Path, data: bytes, *, mode: int = 0o600, group: int | None = None) -> None:
    """Atomically replace ``path`` with ``data``: a temp file with the final mode, fsynced, then renamed."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if group is not None:
            os.chown(tmp, -1, group)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mode_and_group(path: Path) -> tuple[int, int | None]:
    info = path.stat()
    return info.st_mode & 0o777, info.st_gid


@contextmanager
def locked(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise PasswordFileError(f"cannot lock the broker password file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
