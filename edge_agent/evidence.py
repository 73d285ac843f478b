"""Evidence snapshots on the terminal: JPEGs named by their SHA-256, kept private and purged by age and size."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("guardpost.agent.evidence")

JPEG_QUALITY = 85
DAY_S = 86400.0
MB = 2**20
# A temporary file this old is the remains of a crash mid-write, not a write in progress.
STALE_TMP_S = 3600.0


class EvidenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The national guard-service regulation asks for footage and alarm records to be kept at least
    # 30 days; lower it only where the site's own rules allow (face images are sensitive data under PIPL).
    retention_days: int = Field(default=30, ge=1, le=365)
    # MiB; when the folder grows past this the oldest snapshots go first, even inside retention_days.
    max_mb: int = Field(default=2000, ge=10, le=100000)


class EvidenceStore:
    """Snapshots are personal data: the folder is 0700 and each file 0600."""

    def __init__(self, folder: str | Path, retention_days: int = 30, max_mb: int = 2000) -> None:
        self.folder = Path(folder)
        self.retention_days = retention_days
        self.max_mb = max_mb
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask and ignored for an existing folder.
        os.chmod(self.folder, 0o700)

    def path_of(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.jpg"

    def keep(self, rgb: np.ndarray) -> str:
        """Store ``rgb`` (HxWx3 uint8) as a JPEG, durably; returns the SHA-256 hex of the JPEG bytes."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"evidence must be an HxWx3 uint8 RGB image; got {rgb.dtype} {rgb.shape}")
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("OpenCV could not encode the snapshot as JPEG")
        data = jpeg.tobytes()
        digest = hashlib.sha256(data).hexdigest()
        final = self.path_of(digest)
        if final.exists():
            # Same bytes already kept; the new event refers to it, so retention counts from now.
            os.utime(final)
            return digest
        tmp = self.folder / f".{digest}.tmp"
        # Created 0600 from the start: there is no moment when another user could open it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # Rename after fsync so a power cut leaves either no file or a whole one under the final name.
        os.replace(tmp, final)
        self._fsync_folder()
        return digest

    def _fsync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def usage_bytes(self) -> int:
        return sum(size for _mtime, size, _path in self._snapshots())

    def _snapshots(self) -> list[tuple[float, int, Path]]:
        found = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.name.endswith(".jpg"):
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    found.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        found.sort()
        return found

    def purge(self, now: float | None = None) -> int:
        """Delete snapshots past retention, then the oldest while over max_mb; returns how many files went."""
        now = time.time() if now is None else now
        removed = self._purge_stale_tmp(now)
        cutoff = now - self.retention_days * DAY_S
        kept = []
        for mtime, size, path in self._snapshots():
            if mtime < cutoff:
                removed += _unlink(path)
            else:
                kept.append((mtime, size, path))
        total = sum(size for _mtime, size, _path in kept)
        early = 0
        for _mtime, size, path in kept:
            if total <= self.max_mb * MB:
                break
            early += _unlink(path)
            total -= size
        if early:
            log.warning(
                "evidence folder over %d MiB: removed %d snapshot(s) younger than %d days; "
                "raise max_mb or give %s more space to keep the full retention period",
                self.max_mb,
                early,
                self.retention_days,
                self.folder,
            )
        return removed + early

    def _purge_stale_tmp(self, now: float) -> int:
        removed = 0
        for tmp in self.folder.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    removed += _unlink(tmp)
            except FileNotFoundError:
                continue
        return removed


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0  # someone else removed it first
    return 1
