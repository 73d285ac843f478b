"""Dashboard blueprint: the live duty board page; its script and styles are static files."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index() -> str:
    # The page holds no data: its script fetches the API with the token the user supplies.
    return render_template("dashboard.html")
