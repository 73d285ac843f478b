"""GET /metrics: Prometheus text format for a scrape token or an admin's API token."""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from server.metrics_access import TOKEN_ENV, TOKEN_FILE_ENV, MetricsAccess, load_access
from server.metrics_collect import Counters, collect
from server.metrics_text import CONTENT_TYPE, render
from server.users import user_for_token
from server.web import get_session
from server.web.auth import _bearer_token

EXTENSION = "guardpost.metrics"
bp = Blueprint("metrics", __name__)


class _MetricsState:
    def __init__(self, access: MetricsAccess):
        self.access = access
        self.counters = Counters()
        self.lock = threading.Lock()  # one scrape at a time per process: the caches are shared


@bp.record_once
def _configure(setup: BlueprintSetupState) -> None:
    # Read at start, so a bad token file stops the server instead of failing every scrape.
    setup.app.extensions[EXTENSION] = _MetricsState(load_access())


def _authorise(access: MetricsAccess) -> None:
    token = _bearer_token()
    if access.scrape_token_matches(token):
        return
    user = user_for_token(get_session(), token)
    if user is None:
        raise Unauthorized(
            f"metrics need 'Authorization: Bearer <token>': the scrape token ({TOKEN_ENV} or {TOKEN_FILE_ENV}) "
            "or an admin's API token",
            www_authenticate=WWWAuthenticate("bearer"),
        )
    if user.role != "admin":
        raise Forbidden("only the scrape token or an admin's API token may read metrics")


@bp.get("/metrics")
def metrics() -> Response:
    state: _MetricsState = current_app.extensions[EXTENSION]
    _authorise(state.access)
    with state.lock:
        body = render(collect(get_session(), state.counters))
    response = Response(body, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
