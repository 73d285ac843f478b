"""Card and certificate numbers: normalise, mask for logs and events, and digest for terminal lookups.

(The server's own lookup digests are keyed with the server key: server/lookup_digests.py.)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date

MAX_CARD_LENGTH = 64
MASK = "*"

_ALLOWED = re.compile(r"^[A-Z0-9-]+$")
# GB 11643-1999: 17 digits then a check character; weights and check table from ISO 7064 MOD 11-2.
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_CHECK = "10X98765432"
# Below this length keeping 2 + 4 characters would show more than half the number.
_SHORT = 12


def normalise_card_number(raw: str) -> str:
    """The canonical form of a number as read or typed: no whitespace or control characters, upper case.

    Raises ValueError saying what is wrong; the message never repeats the number, since it ends up in logs.
    """
    if not isinstance(raw, str):
        raise ValueError(f"a card number must be text, got {type(raw).__name__}")
    # NFKC folds full-width digits and letters (common in QR payloads from Chinese systems) to ASCII.
    text = unicodedata.normalize("NFKC", raw)
    # Readers wrap numbers in STX/ETX, CR/LF or spaces; none of them is part of the number.
    number = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf")).upper()
    if not number:
        raise ValueError("card number is empty")
    if len(number) > MAX_CARD_LENGTH:
        raise ValueError(f"card number is {len(number)} characters long; at most {MAX_CARD_LENGTH} are allowed")
    if not _ALLOWED.match(number):
        bad = next(ch for ch in number if not ("A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"))
        raise ValueError(f"card number contains {bad!r}; only letters A-Z, digits 0-9 and '-' are allowed")
    return number


def resident_id_check_character(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("the check character is computed over exactly 17 digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK[total % 11]


def is_resident_id(number: str, today: date | None = None) -> bool:
    """True for a valid 18-character resident ID number: check character and a real, past birth date.

    The area code is not checked against a table: codes change and old cards stay valid.
    """
    if not _RESIDENT_ID.match(number):
        return False
    if resident_id_check_character(number[:17]) != number[17]:
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= (today or date.today())


def mask_card_number(number: str) -> str:
    """A form safe for logs, events and screens; ``number`` should already be normalised.

    Resident IDs keep the area code and the last 4 (``110105********1234``); other numbers keep the
    first 2 and the last 4 (``GD******3456``), or only the last 2 when shorter than 12 characters,
    and nothing at all when shorter than 4.
    """
    if is_resident_id(number):
        return number[:6] + MASK * 8 + number[-4:]
    if len(number) >= _SHORT:
        return number[:2] + MASK * (len(number) - 6) + number[-4:]
    if len(number) >= 4:
        return MASK * (len(number) - 2) + number[-2:]
    return MASK * len(number)


def card_digest(number: str, site_salt: str) -> str:
    """Hex HMAC-SHA256 keyed with the site's card salt over the normalised number.

    Terminals look cards up by this digest, so a gallery holds no clear numbers, and a digest from
    one site means nothing at another.
    """
    if not site_salt:
        raise ValueError("a card digest needs the site's card salt; the gallery carries none")
    message = normalise_card_number(number).encode("ascii")
    return hmac.new(site_salt.encode("utf-8"), message, hashlib.sha256).hexdigest()
