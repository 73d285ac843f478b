"""Server-Sent Events for the live board: poll the database each second, send the board when it changed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.models import User, WebSession, utcnow
from server.scope import Scope
from server.web.board_data import board_version, latest_events, live_board
from server.web.sessions import IDLE_TIMEOUT, TOUCH_EVERY
from server.web.shared_cache import MicroCache

log = logging.getLogger("guardpost.board")

POLL_S = 1.0
KEEPALIVE_S = 15.0
# Even with nothing new, a full board now and then: durations age and the page can tell the stream is alive.
REFRESH_S = 30.0
# A stream is a thread on the server: end it now and then, the browser reconnects at once.
MAX_STREAM_S = 30 * 60.0
RETRY_MS = 3000


@dataclass(frozen=True)
class Viewer:
    """Who the stream is for, as plain values: nothing here holds a database session."""

    user_id: int
    scope: Scope
    session_sha256: str | None  # the browser session, or None for an API token
    token_sha256: str


def still_allowed(db: Session, viewer: Viewer, now: datetime) -> bool:
    """The browser session is alive (not logged out, expired or idle) and the user not disabled; keeps it fresh."""
    if viewer.session_sha256 is None:
        user = db.get(User, viewer.user_id)
        return user is not None and not user.disabled and user.token_sha256 == viewer.token_sha256
    web_session = db.get(WebSession, viewer.session_sha256)
    if web_session is None or web_session.user.disabled:
        return False
    if now >= web_session.expires_at or now - web_session.last_seen_at >= IDLE_TIMEOUT:
        return False
    # An open board is a page in use, as its polling was: it keeps the login alive up to its lifetime.
    if now - web_session.last_seen_at >= TOUCH_EVERY:
        web_session.last_seen_at = now
        db.commit()
    return True


def message(event: str, data: object) -> str:
    # Compact JSON has no raw newlines, so one data line is always enough.
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def board_stream(
    sessions: sessionmaker[Session],
    viewer: Viewer,
    *,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_s: float = MAX_STREAM_S,
    cache: MicroCache | None = None,
) -> Iterator[str]:
    """The text of the event stream; each database look is a short session, closed before the next wait."""
    yield f"retry: {RETRY_MS}\n\n"
    started = last_write = clock()
    last_version: tuple | None = None
    last_board = float("-inf")
    while True:
        out: str | None = None
        try:
            with sessions() as db:
                if not still_allowed(db, viewer, utcnow()):
                    yield message("expired", {"reason": "the login ended; log in again"})
                    return
                version = board_version(db, viewer.scope)
                if version != last_version or clock() - last_board >= REFRESH_S:

                    def build(db=db) -> bytes:
                        board = live_board(db, viewer.scope, utcnow())
                        board["events"] = latest_events(db, viewer.scope)
                        return message("board", board).encode()

                    # Every open board of one scope gets the same change: built once, not once per viewer.
                    text = (cache or MicroCache(0)).get((viewer.scope.key(), version), build).decode()
                    out, last_version, last_board = text, version, clock()
        except SQLAlchemyError as exc:
            log.warning("live board stream: database unavailable (%s); retrying", type(exc).__name__)
            out, last_version = message("trouble", {"error": "database unavailable"}), None
        if out is None and clock() - last_write >= KEEPALIVE_S:
            out = ": keep-alive\n\n"
        if out is not None:
            yield out
            last_write = clock()
        if clock() - started >= max_s:
            return
        sleep(poll_s)
