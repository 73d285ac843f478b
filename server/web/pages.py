"""Pages blueprint: login, logout, language choice and the application shell's helpers."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from server.config import LOCALES
from server.models import User
from server.passwords import verify_password
from server.web import get_session, sessions
from server.web.auth import current_scope, require_login
from server.web.i18n import LANG_COOKIE, gettext, locale

bp = Blueprint("pages", __name__)

# (endpoint, label) of the main navigation; other blueprints append theirs when registered, and the
# menu shows them in a supervisor's order of use whatever order the modules were imported in.
NAV_ITEMS: list[tuple[str, str]] = [("dashboard.index", "Live duty board")]
NAV_ORDER = ("dashboard", "review", "duty_pages", "guards_pages", "charts", "exports", "reports")


def nav_items() -> list[tuple[str, str]]:
    def rank(item: tuple[str, str]) -> int:
        blueprint = item[0].split(".")[0]
        return NAV_ORDER.index(blueprint) if blueprint in NAV_ORDER else len(NAV_ORDER)

    return sorted(NAV_ITEMS, key=rank)


def safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker's link must not turn the login page into a redirector."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.home")
    return target


@bp.app_context_processor
def shell_helpers() -> dict:
    return {
        "csrf_token": sessions.csrf_token,
        "nav_items": nav_items,
        "scope_text": lambda: current_scope().describe(),
        "locale": locale(),
    }


@bp.get("/")
def home() -> Response:
    if g.get("user") is None:
        return redirect(url_for("pages.login"))
    return redirect(url_for(NAV_ITEMS[0][0]))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, name="", error=None)
    db = get_session()
    name = request.form.get("name", "").strip()[:100]
    password = request.form.get("password", "")
    if sessions.throttled(db, name):
        sessions.record(db, "throttled", name)
        db.commit()
        error = gettext("Too many failed logins; wait 15 minutes and try again.")
        return render_template("login.html", next_url=next_url, name=name, error=error), 429
    user = db.scalar(select(User).where(User.name == name)) if name else None
    # verify_password runs even for unknown names, so timing does not tell which names exist.
    password_ok = verify_password(user.password_hash if user is not None else None, password)
    if user is None or user.disabled or not password_ok:
        sessions.record(db, "login_failed", name)
        db.commit()
        current_app.logger.info("failed login for %r from %s", name, request.remote_addr)
        error = gettext("Wrong user name or password.")
        return render_template("login.html", next_url=next_url, name=name, error=error), 401
    response = redirect(next_url)
    sessions.start(db, user, response)
    sessions.record(db, "login", user.name)
    db.commit()
    return response


@bp.post("/logout")
@require_login
def logout() -> Response:
    db = get_session()
    response = redirect(url_for("pages.login"))
    sessions.record(db, "logout", g.user.name)
    sessions.end(db, response)
    db.commit()
    return response


@bp.post("/language")
def set_language() -> Response:
    chosen = request.form.get("lang", "")
    response = make_response(redirect(safe_next(request.form.get("next"))))
    if chosen in LOCALES:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True)
        if g.get("user") is not None:
            g.user.locale = chosen
            get_session().commit()
    return response
