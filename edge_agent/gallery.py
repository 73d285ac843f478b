"""Local face gallery: synced from the server, kept encrypted on the terminal's disk."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

from protocol.gallery import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Gallery,
    GalleryError,
    parse_gallery,
)
from protocol.signing import request_signature

log = logging.getLogger("guardpost.agent.gallery")
GALLERY_PATH = "/api/v1/terminal/gallery"


class GalleryStore:
    """Holds the current gallery in memory and an encrypted copy on disk for offline starts."""

    def __init__(self, path: Path, key: bytes, site_id: str):
        try:
            self._cipher = Fernet(key)
        except ValueError:
            raise ValueError("the gallery key is not a valid key; create one with 'guardpost keygen FILE'") from None
        self._path = path
        self._lock = threading.Lock()
        self._gallery = Gallery(site_id=site_id, version="")
        self._load()

    @property
    def current(self) -> Gallery:
        with self._lock:
            return self._gallery

    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            self._gallery = parse_gallery(json.loads(self._cipher.decrypt(self._path.read_bytes())))
        except (InvalidToken, GalleryError, ValueError):
            log.error("stored gallery %s cannot be read with this key; waiting for a fresh sync", self._path)

    def replace(self, document: dict) -> Gallery:
        gallery = parse_gallery(document)
        blob = self._cipher.encrypt(json.dumps(document).encode("utf-8"))
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)  # atomic: a crash leaves the old or the new gallery, never half
        with self._lock:
            self._gallery = gallery
        return gallery


class GallerySync:
    """Polls the server for the site's gallery with a signed request; keeps the last good copy on failure."""

    def __init__(self, store: GalleryStore, server_url: str, device_id: str, secret: str, timeout_s: float = 10.0):
        self._store = store
        self._url = server_url.rstrip("/") + GALLERY_PATH
        self._path = urlsplit(self._url).path
        self._device, self._secret, self._timeout = device_id, secret, timeout_s
        self._failing = False

    def sync_once(self) -> bool:
        """True when the gallery is current (changed or not); False when the server could not be reached."""
        ts = str(int(time.time()))
        headers = {
            DEVICE_HEADER: self._device,
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: request_signature(self._secret, "GET", self._path, ts),
        }
        version = self._store.current.version
        if version:
            headers["If-None-Match"] = f'"{version}"'
        try:
            with urllib.request.urlopen(
                urllib.request.Request(self._url, headers=headers), timeout=self._timeout
            ) as resp:
                document = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return True
            return self._failed(f"server answered {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return self._failed(str(getattr(exc, "reason", exc)))
        try:
            gallery = self._store.replace(document)
        except GalleryError as exc:
            return self._failed(f"server sent an invalid gallery: {exc}")
        self._failing = False
        log.info("gallery version %s: %d guard(s)", gallery.version, len(gallery.names))
        return True

    def _failed(self, why: str) -> bool:
        if not self._failing:
            log.warning("gallery sync from %s failed (%s); using the stored gallery", self._url, why)
            self._failing = True
        return False
