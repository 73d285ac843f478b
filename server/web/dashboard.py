"""Dashboard blueprint: the live duty board page and its event stream; its script and styles are static files."""

from __future__ import annotations

from flask import Blueprint, Response, g, render_template

from server.web import state
from server.web.auth import current_scope, require_login, require_user
from server.web.board_stream import Viewer, board_stream
from server.web.i18n import gettext
from server.web.shared_cache import app_cache

bp = Blueprint("dashboard", __name__)


def board_texts() -> dict[str, str]:
    """What the script writes into the page, in the page's language (the script holds no interface text)."""
    return {
        "nobody": gettext("Nobody on duty."),
        "no_terminals": gettext("No terminals at this post."),
        "no_sites": gettext("No sites in your scope."),
        "no_events": gettext("No events yet."),
        "no_post": gettext("Not at a post"),
        "on_duty": gettext("On duty"),
        "terminals": gettext("Terminals"),
        "guard": gettext("Guard"),
        "since": gettext("Since"),
        "verified": gettext("How verified"),
        "terminal": gettext("Terminal"),
        "online": gettext("online"),
        "offline": gettext("offline"),
        "outbox": gettext("outbox"),
        "clock_synced": gettext("clock synced"),
        "clock_unsynced": gettext("clock not synced"),
        "clock_unknown": gettext("clock unknown"),
        "seen": gettext("seen"),
        "never_seen": gettext("never seen"),
        "alarm": gettext("alarm"),
        "face": gettext("face"),
        "card": gettext("card"),
        "face+card": gettext("face+card"),
        "distance": gettext("distance"),
        "liveness": gettext("liveness"),
        "confirmed_by": gettext("confirmed by"),
        "unknown": gettext("unknown"),
        "check_in": gettext("check-in"),
        "check_out": gettext("check-out"),
        "patrol": gettext("patrol"),
        "denied": gettext("denied"),
        "updated": gettext("Updated"),
        "live": gettext("live"),
        "polling": gettext("refreshing every 2 s"),
        "unreachable": gettext("Cannot reach the server; retrying. Showing data from"),
        "hours": gettext("h"),
        "minutes": gettext("min"),
    }


@bp.get("/board")
@require_login
def index() -> str:
    # The page holds no data: its script streams it (or fetches the API) with the browser's session.
    return render_template("dashboard.html", texts=board_texts())


@bp.get("/board/stream")
@require_user
def stream() -> Response:
    """Server-Sent Events: ``board`` with the whole board when it changes, ``expired`` when the login ends."""
    web_session = g.get("web_session")
    viewer = Viewer(
        user_id=g.user.id,
        scope=current_scope(),
        session_sha256=web_session.id_sha256 if web_session is not None else None,
        token_sha256=g.user.token_sha256,
    )
    # The stream may stay open for long: it must not keep the request's database connection meanwhile.
    request_session = g.pop("db_session", None)
    if request_session is not None:
        request_session.close()
    stream = board_stream(state().sessionmaker, viewer, cache=app_cache("board_stream"))
    response = Response(stream, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must pass each message on at once
    return response
