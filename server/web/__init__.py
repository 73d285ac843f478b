"""Flask application factory: database wiring, per-request sessions, JSON errors and security headers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.fernet import Fernet
from flask import Flask, Response, current_app, g, jsonify, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from server.config import ServerSettings
from server.crypto import KEY_ENV, KEY_FILE_ENV, load_cipher
from server.db import make_engine, make_sessionmaker

EXTENSION = "guardpost"

# The dashboard loads only its own static files; nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# Werkzeug's stock descriptions are written for browsers; API clients get these instead.
_API_MESSAGES = {
    400: "bad request",
    401: "authentication required",
    403: "this token is not allowed to do that",
    404: "no such API endpoint",
    405: "method not allowed on this endpoint",
    500: "internal server error; the server log has the details",
}


@dataclass(frozen=True)
class GuardPostState:
    """What the views need from the application, kept in ``app.extensions["guardpost"]``."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    cipher: Fernet | None
    settings: ServerSettings


def state() -> GuardPostState:
    return current_app.extensions[EXTENSION]


def get_session() -> Session:
    """The request's database session, opened on first use and closed when the request ends."""
    if "db_session" not in g:
        g.db_session = state().sessionmaker()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def _default_cipher(settings: ServerSettings) -> Fernet | None:
    # Without a configured key the server still runs; only gallery sync is unavailable.
    if settings.key_file is None and not os.environ.get(KEY_ENV) and not os.environ.get(KEY_FILE_ENV):
        return None
    return load_cipher(settings.key_file)


def _api_error(exc: HTTPException) -> Response | HTTPException:
    if not request.path.startswith("/api/"):
        return exc
    code = exc.code or 500
    custom = exc.description != type(exc).description
    message = exc.description if custom and exc.description else _API_MESSAGES.get(code, exc.name.lower())
    response = exc.get_response()  # keeps headers such as Allow and WWW-Authenticate
    body = jsonify(error=message)
    response.set_data(body.get_data())
    response.content_type = body.content_type
    return response


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.path.startswith("/api/"):
        # Answers carry tokens' data or face templates: no shared or disk caches.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app(
    settings: ServerSettings | None = None,
    *,
    engine: Engine | None = None,
    cipher: Fernet | None = None,
) -> Flask:
    """Build the web app; pass ``engine`` to share one with ingest, ``cipher`` to serve galleries.

    When ``cipher`` is omitted it is loaded from the configured key (GUARDPOST_KEY,
    GUARDPOST_KEY_FILE or ``settings.key_file``), if any.
    """
    settings = settings or ServerSettings.from_env()
    engine = engine if engine is not None else make_engine(settings.db_url)
    app = Flask(__name__)
    app.json.sort_keys = False  # keep documents in the order the views build them
    app.extensions[EXTENSION] = GuardPostState(
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        cipher=cipher if cipher is not None else _default_cipher(settings),
        settings=settings,
    )
    app.config["GUARDPOST_SECURE_COOKIES"] = settings.secure_cookies
    app.teardown_appcontext(_close_session)
    app.register_error_handler(HTTPException, _api_error)
    app.after_request(_security_headers)

    # The blueprints import get_session from here.
    from server.web import (
        api,
        api_duty,
        auth,
        dashboard,
        exports_page,
        i18n,
        openapi,
        pages,
        sessions,
        supervisor_pages,
    )

    def before_request() -> None:
        auth.authenticate()
        g.locale = i18n.negotiate(settings.default_locale)

    app.before_request(before_request)
    app.after_request(sessions.remember_pre_login_csrf)
    app.jinja_env.globals.update(_=i18n.gettext)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(api_duty.bp, url_prefix="/api/v1")
    app.register_blueprint(openapi.bp, url_prefix="/api/v1")
    app.register_blueprint(pages.bp)
    app.register_blueprint(dashboard.bp)
    supervisor_pages.register(app)
    app.register_blueprint(metrics_blueprint())  # GET /metrics
    app.register_blueprint(exports_page.bp)  # the Exports page and /api/v1/exports
    from server.web import reports  # provincial reporting: /reports and /api/v1/reports

    app.register_blueprint(reports.bp)
    return app


def metrics_blueprint():
    from server.web.metrics import bp  # imports get_session from here

    return bp
