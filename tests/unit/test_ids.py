"""Resident ID numbers (GB 11643) and unified social credit codes (GB 32100): decoding and precise refusals."""

from __future__ import annotations

from datetime import date

import pytest

from protocol.cards import resident_id_check_character
from server.ids import ResidentId, credit_code_check_character, validate_credit_code, validate_resident_id
from server.provinces import normalise_province, province_name

TODAY = date(2025, 6, 1)


def resident_id(area: str = "110105", born: str = "19491231", sequence: str = "002") -> str:
    """A valid number built the way the issuing office does: the check character is computed, not copied."""
    first17 = area + born + sequence
    return first17 + resident_id_check_character(first17)


def test_a_valid_number_is_decoded() -> None:
    number = resident_id()
    assert number == "11010519491231002X"  # the standard's own worked example
    resident = validate_resident_id(number, TODAY)
    assert resident == ResidentId(number=number, birth_date=date(1949, 12, 31), sex="female", area_code="110105")
    assert resident.masked == "110105********002X"
    assert number not in repr(resident)


def test_sex_comes_from_the_parity_of_the_sequence() -> None:
    assert validate_resident_id(resident_id(sequence="017"), TODAY).sex == "male"
    assert validate_resident_id(resident_id(sequence="018"), TODAY).sex == "female"


def test_input_is_normalised_lower_x_spaces_and_full_width_digits() -> None:
    number = resident_id()
    spaced = f" {number[:6]} {number[6:14]} {number[14:].lower()}\n"
    assert validate_resident_id(spaced, TODAY).number == number
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in number)
    assert validate_resident_id(full_width, TODAY).number == number


def test_unknown_area_codes_are_accepted() -> None:
    assert validate_resident_id(resident_id(area="990000"), TODAY).area_code == "990000"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", r"^resident ID number is empty$"),
        (resident_id()[:17], r"has 17 characters, expected 18$"),
        ("110105491231002", r"15-digit numbers \(issued before 1999\) must be given in their 18-digit form"),
        ("11010519491231002A", r"has 'A' at position 18; expected a digit or X$"),
        ("1101X519491231002X", r"has 'X' at position 5; expected a digit$"),
        (resident_id(born="19491332"), r"birth date \(characters 7-14\) is not a real date: month must be in 1\.\.12"),
        (resident_id(born="20230229"), r"birth date \(characters 7-14\) is not a real date: day is out of range"),
        (resident_id(born="20250602"), r"birth date \(characters 7-14\) is in the future$"),
        (resident_id(born="18991231"), r"birth date \(characters 7-14\) is before 1900$"),
        ("110105194912310021", r"check character mismatch: the 18th character is '1', expected 'X'"),
    ],
)
def test_invalid_numbers_are_refused_precisely(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        validate_resident_id(raw, TODAY)
    if len(raw) == 18:
        assert raw not in str(caught.value)  # messages reach logs: never the number itself


def test_a_mistyped_digit_is_caught_by_the_check_character() -> None:
    number = resident_id()
    for position in range(17):
        digit = str((int(number[position]) + 1) % 10)
        typo = number[:position] + digit + number[position + 1 :]
        with pytest.raises(ValueError):
            validate_resident_id(typo, TODAY)


def test_a_birth_date_today_is_accepted_and_today_defaults_to_the_real_date() -> None:
    assert validate_resident_id(resident_id(born="20250601"), TODAY).birth_date == TODAY
    assert validate_resident_id(resident_id()).birth_date == date(1949, 12, 31)


def test_non_text_is_refused() -> None:
    with pytest.raises(ValueError, match="must be text, got int"):
        validate_resident_id(110105194912310020)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["91350100M000100Y43", "9144030071526726XG", "91330100799655058B"])
def test_published_credit_codes_validate(code: str) -> None:
    assert validate_credit_code(code.lower()) == code
    assert credit_code_check_character(code[:17]) == code[17]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("91350100M000100Y4", r"has 17 characters, expected 18"),
        ("91350100M00O100Y43", r"has 'O' at position 12; allowed are digits and capital letters except I, O, S"),
        ("91350100M000100Y44", r"check character mismatch: the 18th character is '4', expected '3'"),
    ],
)
def test_bad_credit_codes_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_credit_code(raw)


@pytest.mark.parametrize("spelling", ["44", "440000", "广东", "广东省", " 广东省 "])
def test_provinces_are_stored_as_their_code(spelling: str) -> None:
    assert normalise_province(spelling) == "440000"
    assert province_name("440000") == "广东省"


def test_unknown_provinces_are_kept_and_empty_ones_refused() -> None:
    assert normalise_province("Guangdong") == "Guangdong"
    assert normalise_province("广西") == normalise_province("广西壮族自治区") == "450000"
    assert normalise_province("99") == "99"
    with pytest.raises(ValueError, match="province is empty"):
        normalise_province("  ")
