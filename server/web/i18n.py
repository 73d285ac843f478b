"""Interface language: English text is the message key; zh.json holds the Chinese; choice per user or browser."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from flask import g, request

from server.config import LOCALES

LANG_COOKIE = "guardpost-lang"


@cache
def catalog(locale: str) -> dict[str, str]:
    if locale == "en":
        return {}
    text = resources.files("server.web").joinpath("translations", f"{locale}.json").read_text("utf-8")
    return json.loads(text)


def negotiate(default: str) -> str:
    """The user's saved choice, else ?lang= or the language cookie, else the browser's, else ``default``."""
    user = g.get("user")
    if user is not None and user.locale in LOCALES:
        return user.locale
    chosen = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    best = request.accept_languages.best_match(LOCALES)
    return best or default


def locale() -> str:
    return g.get("locale") or "en"


def gettext(message: str, **params: object) -> str:
    """``message`` in the request's language, with ``{name}`` placeholders filled in."""
    text = catalog(locale()).get(message, message)
    return text.format(**params) if params else text
