"""Request authentication: bearer tokens for people, HMAC-signed requests for terminals."""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable
from typing import TypeVar

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from protocol.gallery import DEVICE_HEADER, MAX_CLOCK_SKEW_S, SIGNATURE_HEADER, TIMESTAMP_HEADER
from protocol.signing import request_signature
from server.models import Terminal
from server.registry import user_for_token
from server.web import get_session

View = TypeVar("View", bound=Callable)

USER_AUTH_ERROR = (
    "missing or invalid API token (Authorization: Bearer <token>; "
    "create one with 'guardpost users add NAME --role ROLE')"
)


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def require_user(view: View) -> View:
    """Only callers with a valid API token get through; the user is in ``g.user``."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        user = user_for_token(get_session(), _bearer_token())
        if user is None:
            raise Unauthorized(USER_AUTH_ERROR, www_authenticate=WWWAuthenticate("bearer"))
        g.user = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


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
