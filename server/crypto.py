"""The server key, read from a file or the environment: encryption at rest (Fernet) and the lookup-digest keys."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet, InvalidToken

from server.config import ConfigError
from server.lookup_digests import ServerCipher

KEY_ENV = "GUARDPOST_KEY"
KEY_FILE_ENV = "GUARDPOST_KEY_FILE"


def generate_key_file(path: Path) -> None:
    """Write a new random key readable only by its owner; never overwrites an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key())


def load_cipher(key_file: Path | None = None) -> ServerCipher:
    """The server key (a Fernet with the lookup keys); fails with a readable message when none is configured."""
    raw = os.environ.get(KEY_ENV, "").encode()
    path = key_file or (Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None)
    if not raw and path is not None:
        try:
            raw = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the template key file {path}: {exc.strerror}") from None
    if not raw:
        raise ConfigError(
            f"no template encryption key: set {KEY_FILE_ENV} to a key file "
            f"(create one with 'guardpost keygen FILE') or {KEY_ENV}"
        )
    try:
        return ServerCipher(raw)
    except ValueError:
        raise ConfigError("the template key is not a valid key; create one with 'guardpost keygen FILE'") from None


def encrypt_template(cipher: Fernet, template: np.ndarray) -> bytes:
    return cipher.encrypt(np.asarray(template, dtype="<f8").tobytes())


def decrypt_template(cipher: Fernet, blob: bytes) -> np.ndarray:
    try:
        return np.frombuffer(cipher.decrypt(blob), dtype="<f8").copy()
    except InvalidToken:
        raise ConfigError(
            "a stored template cannot be decrypted: the key does not match the one it was enrolled with"
        ) from None
