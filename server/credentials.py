"""Guard credentials (certificate and card numbers): register them and turn them into per-site gallery digests.

Why the clear number is kept, encrypted: a terminal looks cards up by HMAC(site card_salt, number), and
each site has its own salt so a gallery leaked from one site says nothing about cards at another. A guard
can be posted to a new site at any time, so the server must be able to compute a digest it has never
computed before, and that needs the number itself. It is therefore stored with the same Fernet key as
the face templates (useless without the key file) next to a digest keyed with the server key
(server/lookup_digests.py) that enforces uniqueness without decrypting every row. The number never
leaves the server in clear: galleries carry digests, events and logs the masked form.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from protocol.cards import card_digest, mask_card_number, normalise_card_number
from server.config import ConfigError
from server.lookup_digests import lookup_keys
from server.models import Credential, Guard, utcnow
from server.registry import RegistryError

log = logging.getLogger("guardpost.server.credentials")

KINDS = ("certificate", "card")


def add_credential(
    session: Session,
    cipher: Fernet,
    guard_id: str,
    number: str,
    kind: str = "card",
    valid_until: date | None = None,
    *,
    issued_on: date | None = None,
) -> Credential:
    """Register a certificate or card number for a guard; refuses a number that belongs to someone else."""
    if kind not in KINDS:
        raise RegistryError(f"credential kind {kind!r} is not one of {', '.join(KINDS)}")
    if session.get(Guard, guard_id) is None:
        raise RegistryError(f"no guard {guard_id}; add the guard first with 'guardpost guards add'")
    try:
        number = normalise_card_number(number)
    except ValueError as exc:
        raise RegistryError(f"{kind} number refused: {exc}") from None
    if issued_on is not None and valid_until is not None and valid_until < issued_on:
        raise RegistryError(
            f"{kind} {mask_card_number(number)}: valid until {valid_until} is before issued on {issued_on}"
        )
    masked, digest = mask_card_number(number), lookup_keys(cipher).credential_number(number)
    for other in session.scalars(select(Credential).where(Credential.number_hmac == digest)):
        if other.kind == kind:
            raise RegistryError(f"{kind} {masked} is already registered to guard {other.guard_id}")
        # The same number as another guard's card would make the gate's lookup ambiguous.
        if other.guard_id != guard_id:
            raise RegistryError(f"{masked} is already registered to guard {other.guard_id} as a {other.kind}")
    row = new_credential(cipher, guard_id, number, kind, issued_on=issued_on, valid_until=valid_until)
    session.add(row)
    session.flush()
    return row


def new_credential(
    cipher: Fernet,
    guard_id: str,
    number: str,
    kind: str,
    *,
    issued_on: date | None = None,
    valid_until: date | None = None,
) -> Credential:
    """The row for a normalised number, without any check: for callers that validated it already (bulk import)."""
    return Credential(
        guard_id=guard_id,
        kind=kind,
        number_masked=mask_card_number(number),
        number_hmac=lookup_keys(cipher).credential_number(number),
        number_encrypted=cipher.encrypt(number.encode("ascii")),
        issued_on=issued_on,
        valid_until=valid_until,
    )


def guard_credentials(session: Session, guard_id: str) -> list[Credential]:
    return list(
        session.scalars(select(Credential).where(Credential.guard_id == guard_id).order_by(Credential.id)).all()
    )


def credential_number(cipher: Fernet, credential: Credential) -> str:
    """The clear number, for computing gallery digests; never log or return it to a client."""
    try:
        return cipher.decrypt(credential.number_encrypted).decode("ascii")
    except InvalidToken:
        raise ConfigError(
            "a stored card number cannot be decrypted: the key does not match the one it was registered with"
        ) from None


@dataclass(frozen=True)
class SiteCards:
    """What a site's gallery needs: digests per guard, and the ids served (they go into the gallery version)."""

    digests: dict[str, list[str]]
    served_ids: list[int]


def site_cards(
    session: Session, cipher: Fernet, guard_ids: Iterable[str], card_salt: str, today: date | None = None
) -> SiteCards:
    """Digests of the guards' credentials that are still valid ``today`` (UTC), keyed with the site's salt.

    Expired credentials are left out, so an expired card is refused at the gate like an unknown one.
    """
    today = today or utcnow().date()
    rows = session.scalars(
        select(Credential)
        .where(Credential.guard_id.in_(list(guard_ids)))
        .where(or_(Credential.valid_until.is_(None), Credential.valid_until >= today))
        .order_by(Credential.guard_id, Credential.id)
    ).all()
    owners: dict[str, set[str]] = {}
    for row in rows:
        owners.setdefault(card_digest(credential_number(cipher, row), card_salt), set()).add(row.guard_id)
    digests: dict[str, list[str]] = {}
    for digest, guards in owners.items():
        if len(guards) > 1:
            # add_credential refuses this; rows written around it must not open the gate for either guard.
            log.warning("a card number is registered to guards %s; left out of the gallery", ", ".join(sorted(guards)))
            continue
        digests.setdefault(next(iter(guards)), []).append(digest)
    return SiteCards(digests={g: sorted(d) for g, d in digests.items()}, served_ids=[row.id for row in rows])
