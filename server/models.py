"""SQLAlchemy models: registry (companies, sites, posts, terminals, guards, templates, credentials, users), events."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Naive UTC: every timestamp column stores UTC, whatever the database's time zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_card_salt() -> str:
    return secrets.token_hex(16)


class Base(DeclarativeBase):
    pass


FILING_STATUSES = ("filed", "pending", "revoked")


class Company(Base):
    """A security-service company; it files (备案) with the police before its guards may work."""

    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint("filing_status IN ('filed', 'pending', 'revoked')", name="ck_companies_filing_status"),
    )
    company_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # 统一社会信用代码 (GB 32100): optional because a branch office may be registered before it has one.
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True, nullable=True)
    filing_status: Mapped[str] = mapped_column(String(16), default="pending")
    # A province code (e.g. 44 or 440000) or name, as the filing authority writes it.
    home_province: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cross_region_filings: Mapped[list[CrossRegionFiling]] = relationship(
        back_populates="company", cascade="all, delete-orphan", order_by="CrossRegionFiling.province"
    )


class CrossRegionFiling(Base):
    """A company's filing to work in a province other than its home one (跨区域经营备案)."""

    __tablename__ = "company_cross_region_filings"
    __table_args__ = (UniqueConstraint("company_id", "province", name="uq_cross_region_company_province"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.company_id"), index=True)
    province: Mapped[str] = mapped_column(String(64))
    filed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    company: Mapped[Company] = relationship(back_populates="cross_region_filings")


class Site(Base):
    __tablename__ = "sites"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    # The company guarding the site (the contractor), which may differ from a guard's employer.
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.company_id"), nullable=True, index=True)
    province: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # IANA name (checked with zoneinfo on the way in): local dates in imports and reports use it.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Keys the card digests in this site's gallery, so a digest leaked from one site is useless at another.
    card_salt: Mapped[str] = mapped_column(String(64), default=new_card_salt)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    company: Mapped[Company | None] = relationship()


class Post(Base):
    """A duty post at a site (a gate, a watch point, a patrol round); terminals may be placed at one."""

    __tablename__ = "posts"
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    site: Mapped[Site] = relationship()


class Terminal(Base):
    __tablename__ = "terminals"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    # Needed in clear to verify HMACs; protect the database like the key file.
    secret: Mapped[str] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    heartbeat: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    post_id: Mapped[str | None] = mapped_column(ForeignKey("posts.post_id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    site: Mapped[Site] = relationship()


class Guard(Base):
    __tablename__ = "guards"
    __table_args__ = (CheckConstraint("sex IN ('male', 'female')", name="ck_guards_sex"),)
    guard_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The resident ID number is personal data: kept encrypted with the server key (Fernet), with a keyed
    # digest (server/lookup_digests.py) so one person cannot be registered twice without decrypting every
    # row, and a masked form (110105********1234) for screens, logs and exports. Birth date and sex come
    # from it. The digest's column keeps its first name; since migration 0008 it holds an HMAC-SHA256.
    id_number_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    id_number_hmac: Mapped[str | None] = mapped_column("id_number_sha256", String(64), unique=True, nullable=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The employer; where the guard is posted is in assignments (each records the company that posted them).
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.company_id"), nullable=True, index=True)
    # Separate consent for face data (PIPL, face recognition rules): no consent, no templates.
    face_consent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    templates: Mapped[list[FaceTemplate]] = relationship(back_populates="guard", cascade="all, delete-orphan")
    credentials: Mapped[list[Credential]] = relationship(back_populates="guard", cascade="all, delete-orphan")
    employer: Mapped[Company | None] = relationship()


class Assignment(Base):
    """A guard posted to a site by a company from ``start`` until ``end`` (open while ``end`` is null).

    Rows are never deleted: together they are the guard's employment trajectory (就业轨迹).
    """

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guard_id: Mapped[str] = mapped_column(ForeignKey("guards.guard_id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    # Recorded at posting time: the guard's employer may change later, the trajectory must not.
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.company_id"), nullable=True, index=True)
    start: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    end: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class FaceTemplate(Base):
    __tablename__ = "face_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guard_id: Mapped[str] = mapped_column(ForeignKey("guards.guard_id"), index=True)
    encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    guard: Mapped[Guard] = relationship(back_populates="templates")


class Credential(Base):
    """A guard certificate or card number; see server/credentials.py for why the number is kept encrypted."""

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("number_digest_sha256", "kind", name="uq_credentials_digest_kind"),
        CheckConstraint("kind IN ('certificate', 'card')", name="ck_credentials_kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guard_id: Mapped[str] = mapped_column(ForeignKey("guards.guard_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    number_masked: Mapped[str] = mapped_column(String(64))
    # Keyed digest (server/lookup_digests.py); the column keeps its first name, an HMAC-SHA256 since 0008.
    number_hmac: Mapped[str] = mapped_column("number_digest_sha256", String(64))
    number_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    issued_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    guard: Mapped[Guard] = relationship(back_populates="credentials")


class User(Base):
    """A person using the web app or the API; ``role`` with the scope columns decides what they see.

    Scope: admin sees everything; police see sites in ``jurisdiction`` (a province code), read-only;
    a manager sees ``company_id``'s sites and guards; a supervisor sees the sites in ``sites``.
    """

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # scrypt hash (server/passwords.py); null means the user may use the API token only.
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.company_id"), nullable=True)
    jurisdiction: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    sites: Mapped[list[UserSite]] = relationship(cascade="all, delete-orphan", order_by="UserSite.site_id")


class UserSite(Base):
    """A site a supervisor is responsible for."""

    __tablename__ = "user_sites"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), primary_key=True)


class WebSession(Base):
    """A browser login; the cookie holds a random id and only its hash is stored, so a DB leak is no login."""

    __tablename__ = "web_sessions"
    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    user: Mapped[User] = relationship()


class SecurityEvent(Base):
    """Logins, failed logins, throttling, logouts and refused requests (403), for audit and throttling."""

    __tablename__ = "security_events"
    __table_args__ = (Index("ix_security_events_kind_at", "kind", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))  # login, login_failed, throttled, logout, denied
    user_name: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path: Mapped[str | None] = mapped_column(String(300), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_captured", "captured_at", "id"),
        Index("ix_events_site_captured", "site_id", "captured_at"),
        Index("ix_events_guard_captured", "guard_id", "captured_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    site_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    guard_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    captured_at: Mapped[datetime] = mapped_column(DateTime)
    clock_synced: Mapped[bool] = mapped_column(Boolean)
    # captured_at is the terminal's claim; an unsynced clock is re-dated from a later synced heartbeat.
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    clock_status: Mapped[str] = mapped_column(String(16), default="synced")  # synced, corrected, unverified
    boot_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    monotonic_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    margin: Mapped[float | None] = mapped_column(Float, nullable=True)
    liveness: Mapped[str | None] = mapped_column(String(16), nullable=True)
    payload: Mapped[dict] = mapped_column(JSON)


class Reject(Base):
    """Anything ingest refused, with why; the payload is kept only as a bounded excerpt."""

    __tablename__ = "rejects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    topic: Mapped[str] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    payload_excerpt: Mapped[str] = mapped_column(Text)
    payload_size: Mapped[int] = mapped_column(Integer)


class Finding(Base):
    """Something a supervisor must look at: a sequence gap, an unlicensed guard, a terminal offline...

    ``key`` makes raising the same finding twice a no-op (e.g. one finding per missing sequence range).
    """

    __tablename__ = "findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning")  # info, warning, violation
    site_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guard_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class ReviewDecision(Base):
    """A supervisor's verdict on a borderline match: confirmed (the candidate's check-in) or rejected.

    Rows are immutable (server/review.py refuses updates and deletes) and one per event; ``canonical()`` in
    server/review.py gives the exact bytes an audit chain hashes.
    """

    __tablename__ = "review_decisions"
    __table_args__ = (CheckConstraint("decision IN ('confirmed', 'rejected')", name="ck_review_decisions_decision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    guard_id: Mapped[str] = mapped_column(String(64), index=True)  # the candidate the terminal named
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
