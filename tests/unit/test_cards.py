"""Card numbers: normalisation, masking (resident IDs per GB 11643) and per-site digests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.cards import (
    card_digest,
    is_resident_id,
    mask_card_number,
    normalise_card_number,
    resident_id_check_character,
)

RESIDENT_ID = "11010519491231002X"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GD2024123456", "GD2024123456"),
        (" gd2024123456\r\n", "GD2024123456"),
        ("\x02GD-2024 1234\x03", "GD-20241234"),
        ("\tcard-7\u200b", "CARD-7"),  # zero-width space from a copy-paste
        ("ＧＤ２０２４", "GD2024"),  # full-width characters from a QR payload
        ("11010519491231002x", RESIDENT_ID),
    ],
)
def test_normalise_accepts_what_readers_send(raw: str, expected: str) -> None:
    assert normalise_card_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "card number is empty"),
        (" \r\n\x02\x03", "card number is empty"),
        ("A" * 65, "65 characters long; at most 64"),
        ("GD/2024", "contains '/'"),
        ("https://x.example/c?n=1", "contains ':'"),
        ("GD_2024", "contains '_'"),
        ("卡2024", "contains '卡'"),
    ],
)
def test_normalise_refuses_with_the_problem_named(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalise_card_number(raw)


def test_refusal_does_not_repeat_the_number() -> None:
    with pytest.raises(ValueError) as caught:
        normalise_card_number("SECRET1234/")
    assert "SECRET1234" not in str(caught.value)


def test_normalise_refuses_non_text() -> None:
    with pytest.raises(ValueError, match="must be text"):
        normalise_card_number(1234)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("GD2024123456", "GD******3456"),
        ("GD-2024-0001-77", "GD*********1-77"),
        (RESIDENT_ID, "110105********002X"),
        ("12345678901", "*********01"),  # short: only the last 2 stay
        ("1234", "**34"),
        ("123", "***"),
        ("A", "*"),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask_card_number(number) == masked
    assert len(masked) == len(number)


def test_eighteen_characters_that_are_no_resident_id_get_the_generic_mask() -> None:
    bad_check = RESIDENT_ID[:-1] + "1"
    assert mask_card_number(bad_check) == "11************0021"


def test_resident_id_check_character_and_birth_date() -> None:
    assert resident_id_check_character(RESIDENT_ID[:17]) == "X"
    assert is_resident_id(RESIDENT_ID)
    assert not is_resident_id(RESIDENT_ID[:-1] + "1")  # wrong check character
    assert not is_resident_id("GD" + RESIDENT_ID[2:])
    feb30 = "11010519490230" + "002"
    assert not is_resident_id(feb30 + resident_id_check_character(feb30))
    future = "110105" + "20300101" + "002"
    assert not is_resident_id(future + resident_id_check_character(future), today=date(2026, 1, 1))
    assert is_resident_id(future + resident_id_check_character(future), today=date(2031, 1, 1))
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_character("123")


@given(
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)),
    st.integers(min_value=0, max_value=999),
)
def test_any_well_formed_resident_id_validates_and_a_wrong_check_does_not(area: str, born: date, seq: int) -> None:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    check = resident_id_check_character(first17)
    assert is_resident_id(first17 + check)
    assert mask_card_number(first17 + check) == area + "*" * 8 + (first17 + check)[-4:]
    wrong = next(c for c in "0123456789X" if c != check)
    assert not is_resident_id(first17 + wrong)


def test_card_digest_is_hmac_of_the_normalised_number() -> None:
    expected = hmac.new(b"salt-1", b"GD2024123456", hashlib.sha256).hexdigest()
    assert card_digest(" gd2024123456\n", "salt-1") == expected
    assert card_digest("GD2024123456", "salt-2") != expected


def test_card_digest_needs_a_salt() -> None:
    with pytest.raises(ValueError, match="card salt"):
        card_digest("GD2024123456", "")


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=64))
def test_valid_numbers_survive_normalisation_and_masking(number: str) -> None:
    assert normalise_card_number(number) == number
    masked = mask_card_number(number)
    assert len(masked) == len(number)
    hidden = masked.count("*")
    assert hidden >= len(number) / 2 or is_resident_id(number)
