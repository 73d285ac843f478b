"""Card decisions: whose card it is (by site digest) and 1:1 face verification against the card holder."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.card_match import find_card_holder, verify_one_to_one
from edge_agent.readers import CardRead
from protocol.cards import card_digest
from protocol.gallery import Gallery, build_gallery, parse_gallery

DIM = 128
SALT = "5a" * 16


def unit(i: int) -> np.ndarray:
    vector = np.zeros(DIM)
    vector[i] = 1.0
    return vector


def read(number: str) -> CardRead:
    return CardRead(number=number, source="fake", at=0.0)


@pytest.fixture
def gallery() -> Gallery:
    document = build_gallery(
        "site-a",
        "v1",
        [("G-1", "Alice", [unit(0)]), ("G-2", "Bob", [])],
        cards={"G-1": [card_digest("GD2024123456", SALT)], "G-2": [card_digest("CARD-2", SALT)]},
        card_salt=SALT,
    )
    return parse_gallery(document)


def test_card_holder_is_found_by_the_site_digest(gallery: Gallery) -> None:
    assert find_card_holder(read("GD2024123456"), gallery) == "G-1"
    assert find_card_holder(read("CARD-2"), gallery) == "G-2"
    assert find_card_holder(read("CARD-3"), gallery) is None


def test_a_card_digested_for_another_site_is_unknown(gallery: Gallery) -> None:
    other = Gallery(site_id="site-b", version="v", cards={card_digest("CARD-2", "ff" * 16): "G-2"}, card_salt=SALT)
    assert find_card_holder(read("CARD-2"), other) is None


def test_a_gallery_without_cards_knows_no_card() -> None:
    assert find_card_holder(read("CARD-2"), Gallery(site_id="s", version="")) is None


def test_one_to_one_uses_the_nearest_of_the_holders_templates() -> None:
    templates = np.stack([unit(0), unit(1)])
    probe = unit(1) * 0.7 + unit(2) * 0.1
    accepted, distance = verify_one_to_one(probe, templates, threshold=0.5)
    assert accepted and distance == pytest.approx(np.linalg.norm(probe - unit(1)))
    accepted, distance = verify_one_to_one(unit(5), templates, threshold=0.5)
    assert not accepted and distance == pytest.approx(np.sqrt(2))


def test_one_to_one_threshold_is_inclusive_and_a_single_vector_is_one_template() -> None:
    assert verify_one_to_one(unit(0) * 0.5, unit(0), threshold=0.5) == (True, 0.5)
    assert verify_one_to_one(unit(0) * 0.49, unit(0), threshold=0.5)[0] is False


@pytest.mark.parametrize(
    ("probe", "templates", "threshold", "problem"),
    [
        (unit(0), np.empty((0, DIM)), 0.5, "no face templates"),
        (unit(0), np.zeros((2, 64)), 0.5, "expected"),
        (np.full(DIM, np.nan), unit(0)[None, :], 0.5, "finite"),
        (unit(0)[None, :], unit(0)[None, :], 0.5, "1-d"),
        (unit(0), unit(0)[None, :], 0.0, "positive"),
    ],
)
def test_one_to_one_refuses_what_it_cannot_judge(probe, templates, threshold, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        verify_one_to_one(probe, templates, threshold)


def test_face_and_card_on_synthetic_vectors(gallery: Gallery) -> None:
    rng = np.random.default_rng(11)
    holder = find_card_holder(read("GD2024123456"), gallery)
    assert holder == "G-1"
    own_face = unit(0) + rng.normal(0, 0.02, DIM)
    impostor = unit(3) + rng.normal(0, 0.02, DIM)
    assert verify_one_to_one(own_face, gallery.templates[holder], 0.5)[0]
    assert not verify_one_to_one(impostor, gallery.templates[holder], 0.5)[0]
    assert "G-2" not in gallery.templates  # card-only: face+card must deny, card-only may accept
