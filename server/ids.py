"""Chinese identity numbers: resident ID (GB 11643-1999, and how it is stored) and credit code (GB 32100-2015)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal

from cryptography.fernet import Fernet

from protocol.cards import mask_card_number, resident_id_check_character
from server.lookup_digests import lookup_keys

Sex = Literal["male", "female"]

RESIDENT_ID_LENGTH = 18
# GB 11643 numbers encode birth dates from 1900 on; an earlier one is a typo, not a very old guard.
EARLIEST_BIRTH = date(1900, 1, 1)

# GB 32100-2015: 31 characters (no I, O, S, V, Z), weights 3^i mod 31, check = 31 - sum mod 31.
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


@dataclass(frozen=True)
class ResidentId:
    """A validated resident ID number and what it encodes."""

    number: str
    birth_date: date
    sex: Sex
    area_code: str

    @property
    def masked(self) -> str:
        return mask_card_number(self.number)

    def __repr__(self) -> str:  # a stray log of the object must not print the number
        return f"ResidentId({self.masked})"


def _clean(raw: object, what: str) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{what} must be text, got {type(raw).__name__}")
    # NFKC folds full-width digits typed with a Chinese input method; spaces are how people group digits.
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf")).upper()


def validate_resident_id(raw: str, today: date | None = None) -> ResidentId:
    """Check an 18-character resident ID number and decode it; ValueError says exactly what is wrong.

    Messages never repeat the number (they reach logs and error reports). Area codes are not looked up:
    codes are renamed and retired while the cards issued under them stay valid.
    """
    number = _clean(raw, "resident ID number")
    if not number:
        raise ValueError("resident ID number is empty")
    if len(number) != RESIDENT_ID_LENGTH:
        hint = (
            "; 15-digit numbers (issued before 1999) must be given in their 18-digit form" if len(number) == 15 else ""
        )
        raise ValueError(f"resident ID number has {len(number)} characters, expected {RESIDENT_ID_LENGTH}{hint}")
    for position, ch in enumerate(number, 1):
        if not ("0" <= ch <= "9" or (ch == "X" and position == RESIDENT_ID_LENGTH)):
            allowed = "a digit or X" if position == RESIDENT_ID_LENGTH else "a digit"
            raise ValueError(f"resident ID number has {ch!r} at position {position}; expected {allowed}")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise ValueError(f"resident ID number: the birth date (characters 7-14) is not a real date: {exc}") from None
    if born > (today or date.today()):
        raise ValueError("resident ID number: the birth date (characters 7-14) is in the future")
    if born < EARLIEST_BIRTH:
        raise ValueError(f"resident ID number: the birth date (characters 7-14) is before {EARLIEST_BIRTH.year}")
    expected = resident_id_check_character(number[:17])
    if number[17] != expected:
        raise ValueError(
            f"resident ID number: check character mismatch: the 18th character is {number[17]!r}, "
            f"expected {expected!r}; a digit is probably mistyped"
        )
    # The sequence (characters 15-17) is odd for men and even for women.
    sex: Sex = "male" if int(number[16]) % 2 else "female"
    return ResidentId(number=number, birth_date=born, sex=sex, area_code=number[:6])


def id_number_columns(cipher: Fernet, resident: ResidentId) -> dict[str, object]:
    """Guard columns for an ID number: ciphertext, keyed digest, masked form, and the birth date and sex it encodes.

    ``cipher`` is the server key (``server.crypto.load_cipher``), which also keys the digest.
    """
    return {
        "id_number_encrypted": cipher.encrypt(resident.number.encode("ascii")),
        "id_number_hmac": lookup_keys(cipher).id_number(resident.number),
        "id_number_masked": resident.masked,
        "birth_date": resident.birth_date,
        "sex": resident.sex,
    }


def credit_code_check_character(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a unified social credit code."""
    if len(first17) != 17 or any(ch not in _CREDIT_CHARS for ch in first17):
        raise ValueError(f"the check character is computed over 17 characters from {_CREDIT_CHARS}")
    total = sum(_CREDIT_CHARS.index(ch) * weight for ch, weight in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARS[(31 - total % 31) % 31]


def validate_credit_code(raw: str) -> str:
    """A company's 18-character unified social credit code (统一社会信用代码), normalised; ValueError if invalid."""
    code = _clean(raw, "unified social credit code")
    if len(code) != 18:
        raise ValueError(f"unified social credit code has {len(code)} characters, expected 18")
    for position, ch in enumerate(code, 1):
        if ch not in _CREDIT_CHARS:
            raise ValueError(
                f"unified social credit code has {ch!r} at position {position}; "
                "allowed are digits and capital letters except I, O, S, V and Z"
            )
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        raise ValueError(
            f"unified social credit code: check character mismatch: the 18th character is {code[17]!r}, "
            f"expected {expected!r}"
        )
    return code
