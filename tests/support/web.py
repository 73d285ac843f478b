"""Browser-like helpers for Flask test clients: read the CSRF token from a page, log in and out."""

from __future__ import annotations

import re

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "the page has no CSRF token field"
    return found.group(1)


def login(client, name: str, password: str, next_url: str = "/"):
    """Log in through the form like a browser; returns the response to the POST."""
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": next_url})


def page_csrf(client, path: str = "/board") -> str:
    """The CSRF token a logged-in page carries."""
    return csrf_from(client.get(path).get_data(as_text=True))
