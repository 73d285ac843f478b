"""The supervisor pages (alerts, duty logs, guards, charts): their blueprints and navigation entries, in order."""

from __future__ import annotations

from flask import Flask

from server.web import charts, duty_pages, guards_pages, review
from server.web.pages import NAV_ITEMS

PAGES = (
    (review.bp, "review.index", "Alerts"),
    (duty_pages.bp, "duty_pages.index", "Duty logs"),
    (guards_pages.bp, "guards_pages.index", "Guards"),
    (charts.bp, "charts.index", "Charts"),
)


def register(app: Flask) -> None:
    for blueprint, endpoint, label in PAGES:
        app.register_blueprint(blueprint)
        # Every app (tests build many) shares the one navigation list: add each entry once.
        if (endpoint, label) not in NAV_ITEMS:
            NAV_ITEMS.append((endpoint, label))
