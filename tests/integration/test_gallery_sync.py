"""Terminal gallery over real HTTP: signed sync, encrypted at rest, offline start, removal on withdrawal."""

from __future__ import annotations

import numpy as np
from cryptography.fernet import Fernet

from edge_agent.gallery import GalleryStore, GallerySync
from server.registry import add_guard, add_template, assign, end_assignment, set_face_consent
from tests.support.stack import unique


def _setup(stack, site):
    rng = np.random.default_rng(3)
    with stack.sessions() as session:
        add_guard(session, "G-ZHANG", "张伟", [site], face_consent=True)
        for _ in range(2):
            add_template(session, stack.cipher, "G-ZHANG", rng.normal(size=128), "ab" * 32)
        session.commit()


def test_gallery_syncs_encrypted_and_survives_an_offline_restart(stack, tmp_path):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    _setup(stack, site)
    key = Fernet.generate_key()
    store = GalleryStore(tmp_path / "gallery.enc", key, site)
    sync = GallerySync(store, stack.http_url, device, secret)
    assert sync.sync_once()
    assert set(store.current.templates) == {"G-ZHANG"} and store.current.names["G-ZHANG"] == "张伟"
    on_disk = (tmp_path / "gallery.enc").read_bytes()
    assert b"G-ZHANG" not in on_disk and "张伟".encode() not in on_disk  # nothing readable without the key
    version = store.current.version
    assert sync.sync_once() and store.current.version == version  # 304: unchanged

    # The server is gone; the terminal restarts and still knows its guards.
    offline = GalleryStore(tmp_path / "gallery.enc", key, site)
    assert not GallerySync(offline, "http://127.0.0.1:9", device, secret, timeout_s=1).sync_once()
    assert np.array_equal(offline.current.templates["G-ZHANG"], store.current.templates["G-ZHANG"])
    # Another key (a copied SD card) reads nothing.
    assert GalleryStore(tmp_path / "gallery.enc", Fernet.generate_key(), site).current.templates == {}


def test_withdrawn_consent_or_reassignment_removes_the_guard_from_the_terminal(stack, tmp_path):
    site, device = unique("site"), unique("gate")
    secret = stack.add_device(site, device)
    _setup(stack, site)
    with stack.sessions() as session:
        add_guard(session, "G-LI", "Li Na", [site], face_consent=True)
        add_template(session, stack.cipher, "G-LI", np.ones(128), "cd" * 32)
        session.commit()
    store = GalleryStore(tmp_path / "gallery.enc", Fernet.generate_key(), site)
    sync = GallerySync(store, stack.http_url, device, secret)
    assert sync.sync_once() and set(store.current.templates) == {"G-ZHANG", "G-LI"}
    with stack.sessions() as session:
        set_face_consent(session, "G-ZHANG", given=False)
        session.commit()
    assert sync.sync_once() and set(store.current.templates) == {"G-LI"}
    with stack.sessions() as session:
        assign(session, "G-LI", unique("other-site"))  # posted elsewhere too: still served here
        session.commit()
    assert sync.sync_once() and set(store.current.templates) == {"G-LI"}
    with stack.sessions() as session:
        end_assignment(session, "G-LI", site)  # no longer posted here
        session.commit()
    assert sync.sync_once() and store.current.templates == {}


def test_a_forged_terminal_gets_nothing(stack, tmp_path):
    site, device = unique("site"), unique("gate")
    stack.add_device(site, device)
    _setup(stack, site)
    store = GalleryStore(tmp_path / "gallery.enc", Fernet.generate_key(), site)
    assert not GallerySync(store, stack.http_url, device, "not-the-secret").sync_once()
    assert store.current.templates == {} and not (tmp_path / "gallery.enc").exists()
