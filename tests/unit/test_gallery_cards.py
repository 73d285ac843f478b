"""Gallery document with cards: card-only guards, the site salt, and documents from older servers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from protocol.cards import card_digest
from protocol.gallery import GALLERY_SCHEMA, GalleryError, build_gallery, parse_gallery

SALT = "0f" * 16
TEMPLATE = np.linspace(-0.2, 0.2, 128)


def digest(number: str) -> str:
    return card_digest(number, SALT)


def test_round_trip_with_face_and_card_only_guards() -> None:
    document = build_gallery(
        "site-a",
        "v1",
        [("G-1", "Alice", [TEMPLATE, TEMPLATE * 0.5]), ("G-2", "Bob", []), ("G-3", "Nobody", [])],
        cards={"G-1": [digest("CARD-1")], "G-2": [digest("CARD-2"), digest("CERT-2")]},
        card_salt=SALT,
    )
    document = json.loads(json.dumps(document))  # as it travels
    assert document["card_salt"] == SALT
    assert [g["guard_id"] for g in document["guards"]] == ["G-1", "G-2"]  # G-3 has neither
    assert document["guards"][1]["templates"] == []
    gallery = parse_gallery(document)
    assert set(gallery.templates) == {"G-1"} and gallery.templates["G-1"].shape == (2, 128)
    assert gallery.names == {"G-1": "Alice", "G-2": "Bob"}
    assert gallery.cards == {digest("CARD-1"): "G-1", digest("CARD-2"): "G-2", digest("CERT-2"): "G-2"}
    assert gallery.card_salt == SALT


def test_face_only_call_keeps_working() -> None:
    document = build_gallery("site-a", "v1", [("G-1", "Alice", [TEMPLATE]), ("G-2", "Bob", [])])
    assert [g["guard_id"] for g in document["guards"]] == ["G-1"]
    assert "cards" not in document["guards"][0]
    gallery = parse_gallery(document)
    assert gallery.cards == {} and gallery.card_salt == ""


def test_document_from_a_server_without_cards_parses() -> None:
    old = build_gallery("site-a", "v1", [("G-1", "Alice", [TEMPLATE])])
    del old["card_salt"]
    assert set(parse_gallery(old).templates) == {"G-1"}


def test_build_refuses_cards_without_salt_and_bad_digests() -> None:
    with pytest.raises(GalleryError, match="card_salt"):
        build_gallery("s", "v", [("G-1", "A", [])], cards={"G-1": [digest("X1")]})
    with pytest.raises(GalleryError, match="64 lowercase hex"):
        build_gallery("s", "v", [("G-1", "A", [])], cards={"G-1": ["ABC"]}, card_salt=SALT)
    with pytest.raises(GalleryError, match="both G-1 and G-2"):
        build_gallery(
            "s", "v", [("G-1", "A", []), ("G-2", "B", [])], cards={"G-1": ["a" * 64], "G-2": ["a" * 64]}, card_salt=SALT
        )


def entry(guard_id: str, **fields) -> dict:
    return {"guard_id": guard_id, "name": guard_id, **fields}


def document(*guards: dict, card_salt: object = SALT) -> dict:
    return {"schema": GALLERY_SCHEMA, "site_id": "s", "version": "v", "card_salt": card_salt, "guards": list(guards)}


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (document(entry("G-1", templates=[])), "neither templates nor cards"),
        (document(entry("G-1")), "neither templates nor cards"),
        (document(entry("G-1", templates=[], cards="a" * 64)), "must be lists"),
        (document(entry("G-1", templates=[], cards=["A" * 64])), "64 lowercase hex"),
        (document(entry("G-1", templates=[], cards=[7])), "64 lowercase hex"),
        (document(entry("G-1", templates=[], cards=["a" * 64]), card_salt=""), "no card_salt"),
        (document(entry("G-1", cards=["a" * 64]), card_salt=5), "card_salt must be a string"),
        (document(entry("G-1", cards=["a" * 64]), entry("G-2", cards=["a" * 64])), "both G-1 and G-2"),
    ],
)
def test_parse_refuses_broken_documents(doc: dict, problem: str) -> None:
    with pytest.raises(GalleryError, match=problem):
        parse_gallery(doc)


def test_card_only_entry_may_omit_templates() -> None:
    gallery = parse_gallery(document(entry("G-1", cards=["b" * 64])))
    assert gallery.cards == {"b" * 64: "G-1"} and gallery.templates == {} and gallery.names == {"G-1": "G-1"}
