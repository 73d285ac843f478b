"""Registry operations: terminals, guards (identity, employer), site assignments, templates, users and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from protocol.cards import mask_card_number
from protocol.gallery import build_gallery
from protocol.topics import check_id
from server.crypto import decrypt_template, encrypt_template
from server.ids import id_number_columns, validate_resident_id
from server.lookup_digests import lookup_keys
from server.models import Assignment, Company, FaceTemplate, Guard, Post, Site, Terminal, utcnow


class RegistryError(ValueError):
    """A registry request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Certificate:
    """A guard certificate (保安员证) as entered: its number and, when known, its validity dates."""

    number: str
    issued_on: date | None = None
    valid_until: date | None = None

    def __repr__(self) -> str:  # a stray log of the object must not print the number
        return f"Certificate({mask_card_number(self.number)}, {self.issued_on}, {self.valid_until})"


def check_timezone(tz: str) -> str:
    """``tz`` if it is an IANA time zone name (Asia/Shanghai), else RegistryError."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RegistryError(f"time zone {tz!r} is not an IANA time zone name such as Asia/Shanghai") from None
    return tz


def ensure_site(session: Session, site_id: str, name: str = "", tz: str = "UTC") -> Site:
    check_id(site_id, "site_id")
    site = session.get(Site, site_id)
    if site is None:
        site = Site(site_id=site_id, name=name or site_id, timezone=check_timezone(tz))
        session.add(site)
        session.flush()
    return site


def add_device(session: Session, site_id: str, device_id: str, *, post_id: str | None = None) -> tuple[Terminal, str]:
    """Register a terminal (creating its site if needed), optionally at a post; returns it with its new secret."""
    check_id(device_id, "device_id")
    if session.get(Terminal, device_id) is not None:
        raise RegistryError(f"terminal {device_id} is already registered")
    ensure_site(session, site_id)
    if post_id is not None:
        post = session.get(Post, post_id)
        if post is None or post.site_id != site_id:
            raise RegistryError(f"site {site_id} has no post {post_id}; add it with 'guardpost posts add'")
    secret = secrets.token_hex(32)
    terminal = Terminal(device_id=device_id, site_id=site_id, secret=secret, post_id=post_id)
    session.add(terminal)
    session.flush()
    return terminal, secret


def add_guard(
    session: Session,
    guard_id: str,
    name: str,
    sites: Iterable[str] = (),
    face_consent: bool = False,
    *,
    cipher: Fernet | None = None,
    id_number: str | None = None,
    company_id: str | None = None,
    certificate: Certificate | None = None,
    today: date | None = None,
) -> Guard:
    """Add a guard; the ID and certificate numbers are stored encrypted, so they need ``cipher``."""
    check_id(guard_id, "guard_id")
    if not name or not name.strip():
        raise RegistryError(f"guard {guard_id} needs a name")
    if session.get(Guard, guard_id) is not None:
        raise RegistryError(f"guard {guard_id} already exists")
    if (id_number is not None or certificate is not None) and cipher is None:
        raise RegistryError(
            "ID and certificate numbers are stored encrypted: the server key is needed (GUARDPOST_KEY_FILE)"
        )
    identity: dict[str, object] = {}
    if id_number is not None:
        try:
            resident = validate_resident_id(id_number, today)
        except ValueError as exc:
            raise RegistryError(f"guard {guard_id}: {exc}") from None
        digest = lookup_keys(cipher).id_number(resident.number)  # type: ignore[arg-type]
        other = session.scalar(select(Guard.guard_id).where(Guard.id_number_hmac == digest))
        if other is not None:
            raise RegistryError(f"resident ID number {resident.masked} is already registered to guard {other}")
        identity = id_number_columns(cipher, resident)  # type: ignore[arg-type]
    if company_id is not None and session.get(Company, company_id) is None:
        raise RegistryError(f"no company {company_id}; add it first with 'guardpost companies add'")
    guard = Guard(
        guard_id=guard_id,
        name=name.strip(),
        company_id=company_id,
        face_consent_at=utcnow() if face_consent else None,
        **identity,
    )
    session.add(guard)
    session.flush()
    if certificate is not None:
        # Imported here because server.credentials builds on this module (RegistryError).
        from server.credentials import add_credential

        add_credential(
            session,
            cipher,  # type: ignore[arg-type]
            guard_id,
            certificate.number,
            kind="certificate",
            issued_on=certificate.issued_on,
            valid_until=certificate.valid_until,
        )
    for site_id in sites:
        assign(session, guard_id, site_id)
    return guard


def assign(
    session: Session,
    guard_id: str,
    site_id: str,
    start: datetime | None = None,
    *,
    end: datetime | None = None,
    company_id: str | None = None,
) -> Assignment:
    """Post a guard to a site; the posting company defaults to the guard's employer, else the site's company."""
    guard = session.get(Guard, guard_id)
    if guard is None:
        raise RegistryError(f"no guard {guard_id}")
    site = ensure_site(session, site_id)
    if company_id is not None and session.get(Company, company_id) is None:
        raise RegistryError(f"no company {company_id}; add it first with 'guardpost companies add'")
    start = start or utcnow()
    if end is not None and end <= start:
        raise RegistryError(f"assignment of {guard_id} at {site_id}: the end must be after the start")
    assignment = Assignment(
        guard_id=guard_id,
        site_id=site_id,
        company_id=company_id or guard.company_id or site.company_id,
        start=start,
        end=end,
    )
    session.add(assignment)
    session.flush()
    return assignment


def end_assignment(session: Session, guard_id: str, site_id: str, end: datetime | None = None) -> int:
    """Close the guard's open postings at a site (kept as history); their terminals drop the guard at next sync."""
    open_rows = session.scalars(
        select(Assignment).where(
            Assignment.guard_id == guard_id, Assignment.site_id == site_id, Assignment.end.is_(None)
        )
    ).all()
    if not open_rows:
        raise RegistryError(f"guard {guard_id} has no open assignment at site {site_id}")
    for row in open_rows:
        row.end = end or utcnow()
    session.flush()
    return len(open_rows)


def set_face_consent(session: Session, guard_id: str, given: bool) -> int:
    """Record consent, or its withdrawal: then every template is deleted and terminals drop them at next sync.

    Returns how many templates were deleted.
    """
    guard = session.get(Guard, guard_id)
    if guard is None:
        raise RegistryError(f"no guard {guard_id}")
    if given:
        guard.face_consent_at = utcnow()
        session.flush()
        return 0
    deleted = len(guard.templates)
    guard.templates.clear()
    guard.face_consent_at = None
    session.flush()
    return deleted


def add_template(
    session: Session, cipher: Fernet, guard_id: str, template: np.ndarray, photo_sha256: str
) -> FaceTemplate:
    guard = session.get(Guard, guard_id)
    if guard is None:
        raise RegistryError(f"no guard {guard_id}; add the guard first with 'guardpost guards add'")
    if guard.face_consent_at is None:
        raise RegistryError(
            f"guard {guard_id} has no recorded consent to face data; record it first with "
            f"'guardpost guards consent {guard_id} --given' (check-in by card needs no consent)"
        )
    row = FaceTemplate(guard_id=guard_id, encrypted=encrypt_template(cipher, template), photo_sha256=photo_sha256)
    session.add(row)
    session.flush()
    return row


def site_gallery(session: Session, cipher: Fernet, site_id: str) -> dict:
    """The gallery document for one site: templates and card digests of guards currently assigned there."""
    # Imported here because server.credentials builds on this module (RegistryError).
    from server.credentials import site_cards

    now = utcnow()
    guard_ids = session.scalars(
        select(Assignment.guard_id)
        .where(Assignment.site_id == site_id, Assignment.start <= now)
        .where((Assignment.end.is_(None)) | (Assignment.end > now))
        .distinct()
    ).all()
    rows = session.execute(
        select(Guard.guard_id, Guard.name, FaceTemplate.id, FaceTemplate.encrypted)
        .join(FaceTemplate, FaceTemplate.guard_id == Guard.guard_id)
        .where(Guard.guard_id.in_(guard_ids), Guard.face_consent_at.is_not(None))
        .order_by(Guard.guard_id, FaceTemplate.id)
    ).all()
    entries: dict[str, tuple[str, list[np.ndarray]]] = {}
    for guard_id, name, _tid, blob in rows:
        entries.setdefault(guard_id, (name, []))[1].append(decrypt_template(cipher, blob))
    site = session.get(Site, site_id)
    card_salt = site.card_salt if site is not None else ""
    cards = site_cards(session, cipher, guard_ids, card_salt, now.date()) if card_salt else None
    if cards is not None:
        # Card-only guards: no templates, but a card terminal must still know them.
        for guard_id, name in session.execute(
            select(Guard.guard_id, Guard.name).where(Guard.guard_id.in_(list(cards.digests)))
        ).all():
            entries.setdefault(guard_id, (name, []))
    # The version changes whenever the templates, the cards or the salt served to the site change.
    served = [f"{g}:{t}" for g, _n, t, _b in rows]
    if cards is not None:
        served += ["cards", card_salt, *(str(i) for i in cards.served_ids)]
    version = hashlib.sha256(",".join(served).encode()).hexdigest()[:16]
    return build_gallery(
        site_id,
        version,
        [(g, n, ts) for g, (n, ts) in sorted(entries.items())],
        cards=cards.digests if cards is not None else None,
        card_salt=card_salt,
    )
