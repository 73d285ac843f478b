"""Evidence store: content-addressed JPEGs, private permissions, purge by age then by size."""

from __future__ import annotations

import hashlib
import os
import stat
import time

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.evidence import DAY_S, MB, EvidenceConfig, EvidenceStore


def frame(seed: int, size: int = 64) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # strongly red, to check the channel order survives
    return rgb


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def age(path, days: float, now: float) -> None:
    then = now - days * DAY_S
    os.utime(path, (then, then))


def test_keep_writes_a_private_jpeg_named_by_its_sha256(tmp_path):
    store = EvidenceStore(tmp_path / "evidence")
    digest = store.keep(frame(1))
    path = tmp_path / "evidence" / f"{digest}.jpg"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest and data[:2] == b"\xff\xd8"
    assert mode(path) == 0o600 and mode(tmp_path / "evidence") == 0o700
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr[..., 2].mean() > 200 and bgr[..., 0].mean() < 200  # red stayed red: RGB was converted to BGR
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [path.name]  # no temporary left behind


def test_an_existing_folder_is_made_private(tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    EvidenceStore(folder)
    assert mode(folder) == 0o700


def test_the_same_snapshot_is_kept_once_and_its_age_restarts(tmp_path):
    store = EvidenceStore(tmp_path)
    digest = store.keep(frame(2))
    path = store.path_of(digest)
    age(path, 10, time.time())
    assert store.keep(frame(2)) == digest
    assert time.time() - path.stat().st_mtime < 60
    assert len(list(tmp_path.glob("*.jpg"))) == 1


def test_keep_refuses_what_is_not_an_rgb_image(tmp_path):
    store = EvidenceStore(tmp_path)
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)):
        with pytest.raises(ValueError, match="HxWx3 uint8"):
            store.keep(bad)


def test_purge_removes_snapshots_past_retention(tmp_path):
    store = EvidenceStore(tmp_path, retention_days=30)
    now = time.time()
    old, recent = store.path_of(store.keep(frame(3))), store.path_of(store.keep(frame(4)))
    age(old, 31, now)
    age(recent, 29, now)
    assert store.purge(now) == 1
    assert not old.exists() and recent.exists()
    assert store.purge(now) == 0
    assert store.purge(now + 2 * DAY_S) == 1 and not recent.exists()


def test_purge_removes_the_oldest_while_over_max_mb(tmp_path, caplog):
    store = EvidenceStore(tmp_path, retention_days=30, max_mb=10)
    now = time.time()
    paths = []
    for days in (3, 2, 1):  # three 4 MiB files (stand-ins for big snapshots), oldest first
        path = tmp_path / f"{days:064d}.jpg"
        path.write_bytes(b"\0" * (4 * MB))
        age(path, days, now)
        paths.append(path)
    assert store.usage_bytes() == 12 * MB
    assert store.purge(now) == 1
    assert [p.exists() for p in paths] == [False, True, True]
    assert "younger than 30 days" in caplog.text


def test_purge_clears_leftovers_of_a_crash_mid_write(tmp_path):
    store = EvidenceStore(tmp_path)
    now = time.time()
    stale, fresh = tmp_path / ".abc.tmp", tmp_path / ".def.tmp"
    stale.write_bytes(b"half a jpeg")
    fresh.write_bytes(b"being written")
    age(stale, 1, now)
    assert store.purge(now) == 1
    assert not stale.exists() and fresh.exists()


def test_evidence_config():
    assert (EvidenceConfig().retention_days, EvidenceConfig().max_mb) == (30, 2000)
    for bad in ({"retention_days": 0}, {"retention_days": 366}, {"max_mb": 9}, {"max_mb": 100001}, {"days": 30}):
        with pytest.raises(ValidationError):
            EvidenceConfig(**bad)
