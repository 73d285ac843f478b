"""Server-side browser sessions: random ids in a cookie, hashes in the database, CSRF tokens, login throttling."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Response, current_app, g, request
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.models import SecurityEvent, User, WebSession, utcnow

# A shift is at most 12 h: a login lasts one shift; two idle hours end it sooner.
SESSION_LIFETIME = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(hours=2)
TOUCH_EVERY = timedelta(minutes=1)

THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def cookie_names() -> tuple[str, str]:
    """(session cookie, pre-login CSRF cookie); the __Host- prefix pins them to this host over HTTPS."""
    if current_app.config["GUARDPOST_SECURE_COOKIES"]:
        return "__Host-guardpost-session", "__Host-guardpost-csrf"
    return "guardpost-session", "guardpost-csrf"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def record(session: Session, kind: str, user_name: str | None, detail: str = "") -> None:
    """Keep a security event (login, failure, denial...) with the request's address and path."""
    session.add(
        SecurityEvent(
            kind=kind,
            user_name=user_name,
            remote_addr=(request.remote_addr or "")[:64],
            path=request.path[:300],
            detail=detail[:2000],
        )
    )


def throttled(session: Session, user_name: str) -> bool:
    """True while the name or the address has had too many failed logins in the window."""
    since = utcnow() - THROTTLE_WINDOW
    failures = select(func.count()).where(SecurityEvent.kind == "login_failed", SecurityEvent.at >= since)
    by_user = session.scalar(failures.where(SecurityEvent.user_name == user_name)) or 0
    by_address = session.scalar(failures.where(SecurityEvent.remote_addr == (request.remote_addr or ""))) or 0
    return by_user >= MAX_FAILURES_PER_USER or by_address >= MAX_FAILURES_PER_ADDRESS


def start(session: Session, user: User, response: Response) -> None:
    """Log ``user`` in: any session the browser had dies, a fresh id and CSRF token are issued."""
    old = request.cookies.get(cookie_names()[0])
    if old:
        session.execute(delete(WebSession).where(WebSession.id_sha256 == _digest(old)))
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id_sha256=_digest(session_id),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    _set_cookie(response, cookie_names()[0], session_id, SESSION_LIFETIME)
    response.delete_cookie(cookie_names()[1], path="/", secure=current_app.config["GUARDPOST_SECURE_COOKIES"])


def end(session: Session, response: Response) -> None:
    web_session = current()
    if web_session is not None:
        session.execute(delete(WebSession).where(WebSession.id_sha256 == web_session.id_sha256))
    response.delete_cookie(cookie_names()[0], path="/", secure=current_app.config["GUARDPOST_SECURE_COOKIES"])


def _set_cookie(response: Response, name: str, value: str, max_age: timedelta | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(max_age.total_seconds()) if max_age else None,
        path="/",
        secure=current_app.config["GUARDPOST_SECURE_COOKIES"],
        httponly=True,
        samesite="Lax",
    )


def lookup(session: Session) -> WebSession | None:
    """The request's live session, if its cookie names one that has not expired, idled out or been ended."""
    session_id = request.cookies.get(cookie_names()[0])
    if not session_id or len(session_id) > 100:
        return None
    web_session = session.get(WebSession, _digest(session_id))
    if web_session is None:
        return None
    now = utcnow()
    if now >= web_session.expires_at or now - web_session.last_seen_at >= IDLE_TIMEOUT or web_session.user.disabled:
        session.delete(web_session)
        session.commit()
        return None
    if now - web_session.last_seen_at >= TOUCH_EVERY:
        web_session.last_seen_at = now
        session.commit()
    return web_session


def current() -> WebSession | None:
    return g.get("web_session")


def csrf_token() -> str:
    """The token forms must echo: the session's, or before login a random one kept in its own cookie."""
    web_session = current()
    if web_session is not None:
        return web_session.csrf_token
    if "pre_login_csrf" not in g:
        g.pre_login_csrf = request.cookies.get(cookie_names()[1]) or secrets.token_urlsafe(32)
    return g.pre_login_csrf


def remember_pre_login_csrf(response: Response) -> Response:
    """Send the pre-login CSRF cookie when a page used one it did not receive."""
    token = g.get("pre_login_csrf")
    if token and request.cookies.get(cookie_names()[1]) != token:
        _set_cookie(response, cookie_names()[1], token, None)
    return response


def csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    web_session = current()
    expected = web_session.csrf_token if web_session is not None else request.cookies.get(cookie_names()[1], "")
    return bool(sent and expected) and secrets.compare_digest(sent.encode(), expected.encode())
