"""Dashboard blueprint: the live duty board page; its script and styles are static files."""

from __future__ import annotations

from flask import Blueprint, render_template

from server.web.auth import require_login

bp = Blueprint("dashboard", __name__)


@bp.get("/board")
@require_login
def index() -> str:
    # The page holds no data: its script fetches the API with the browser's session.
    return render_template("dashboard.html")
