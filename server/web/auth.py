"""Request authentication and scope: API tokens or browser sessions for people, HMAC-signed requests for terminals."""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

from flask import abort, current_app, g, redirect, request, url_for
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from protocol.gallery import DEVICE_HEADER, MAX_CLOCK_SKEW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER
from protocol.signing import request_signature
from server.models import Terminal
from server.scope import Scope, scope_for
from server.users import user_for_token
from server.web import get_session, sessions

View = TypeVar("View", bound=Callable)

USER_AUTH_ERROR = (
    "missing or invalid API token (Authorization: Bearer <token>; "
    "create one with 'guardpost users add NAME --role ROLE')"
)
CSRF_ERROR = "CSRF token missing or wrong; reload the page and try again"


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate() -> None:
    """Before every request: find the user (API token first, else session cookie) and check CSRF."""
    g.user, g.auth = None, None
    db = get_session()
    if "Authorization" in request.headers:
        # Only the token counts when one is sent: a bad token never falls back to a cookie.
        user = user_for_token(db, _bearer_token())
        if user is not None:
            g.user, g.auth = user, "token"
        return
    if DEVICE_HEADER in request.headers:
        return  # terminals sign each request; require_device checks it
    web_session = sessions.lookup(db)
    if web_session is not None:
        g.web_session, g.user, g.auth = web_session, web_session.user, "session"
    if request.method in sessions.SAFE_METHODS:
        return
    # Cross-site forms cannot set headers but do carry cookies: cookie-borne or page requests need the token.
    has_cookie = any(name in request.cookies for name in sessions.cookie_names())
    if (has_cookie or not request.path.startswith("/api/")) and not sessions.csrf_ok():
        raise Forbidden(CSRF_ERROR)


def current_scope() -> Scope:
    if "scope" not in g:
        g.scope = scope_for(g.user)
    return g.scope


def deny(reason: str) -> NoReturn:
    """Refuse with 403, and keep a record of who asked for what."""
    name = g.user.name if g.get("user") is not None else None
    current_app.logger.warning("denied %s %s to %s: %s", request.method, request.path, name, reason)
    db = get_session()
    db.rollback()
    sessions.record(db, "denied", name, reason)
    db.commit()
    abort(403, reason)


def require_user(view: View) -> View:
    """API views: a valid token or a logged-in browser session; the user is in ``g.user``."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            raise Unauthorized(USER_AUTH_ERROR, www_authenticate=WWWAuthenticate("bearer"))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def require_login(view: View) -> View:
    """Pages: a logged-in browser session (or token), else off to the login page and back."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def require_write() -> None:
    """Refuse read-only roles (police) before any change."""
    if not current_scope().can_write:
        deny(f"a {g.user.role} user has read-only access")


def require_site(site_id: str) -> None:
    if not current_scope().allows_site(get_session(), site_id):
        deny(f"site {site_id} is outside this user's scope ({current_scope().describe()})")


def require_guard(guard_id: str) -> None:
    if not current_scope().allows_guard(get_session(), guard_id):
        deny(f"guard {guard_id} is outside this user's scope ({current_scope().describe()})")


def _device_denied(why: str) -> Unauthorized:
    return Unauthorized(f"terminal authentication failed: {why}")


def _authenticated_terminal() -> Terminal:
    device_id = request.headers.get(DEVICE_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not (device_id and timestamp and signature):
        raise _device_denied(f"send {DEVICE_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise _device_denied(f"{TIMESTAMP_HEADER} must be unix seconds") from None
    # Bounds how long a captured request can be replayed.
    if abs(time.time() - sent_at) > MAX_CLOCK_SKEW_S:
        raise _device_denied(f"timestamp is more than {MAX_CLOCK_SKEW_S} s from server time; check the terminal clock")
    terminal = get_session().get(Terminal, device_id)
    # Unknown, disabled and wrongly signed all answer alike, so ids cannot be probed.
    expected = request_signature(terminal.secret if terminal else "", request.method, request.path, timestamp)
    signature_ok = hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))
    if terminal is None or not terminal.enabled or not signature_ok:
        raise _device_denied("unknown or disabled terminal, or bad signature")
    return terminal


def require_device(view: View) -> View:
    """Only registered, enabled terminals with a fresh valid signature get through; see ``g.terminal``."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        g.terminal = _authenticated_terminal()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
