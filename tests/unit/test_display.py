"""Gate display: state and idle timeout, the Flask app, and a real server on a free port."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from pydantic import ValidationError

from edge_agent.display import (
    IDLE_MESSAGE,
    DisplayConfig,
    DisplayError,
    DisplayFeedback,
    DisplayServer,
    DisplayState,
    build_display,
    create_display_app,
)
from edge_agent.feedback import FeedbackHub, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def state(clock):
    return DisplayState("gate-north-1", idle_after_s=5.0, clock=clock)


def test_starts_idle_with_the_terminal_id(state):
    assert state.snapshot() == {"outcome": "idle", "title": "", "message": IDLE_MESSAGE, "terminal": "gate-north-1"}


def test_shows_a_verdict_then_returns_to_idle(state, clock):
    DisplayFeedback(state).show(Verdict.accepted("Grace Hopper"))
    shown = state.snapshot()
    assert shown["outcome"] == "accepted" and shown["title"] == "Grace Hopper"
    assert shown["message"] == "Welcome, Grace Hopper. Check-in recorded."
    clock.now += 4.9
    assert state.snapshot()["outcome"] == "accepted"
    clock.now += 0.1
    assert state.snapshot()["outcome"] == "idle"
    FeedbackHub([DisplayFeedback(state)]).show(Verdict.prompt("Please blink"))
    assert state.snapshot()["outcome"] == "prompt" and state.snapshot()["title"] == "Please blink"


def test_app_serves_page_script_style_and_state_with_security_headers(state):
    client = create_display_app(state).test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script src="/display.js" defer></script>' in html and '<link rel="stylesheet" href="/display.css">' in html
    # No inline script or style, nothing fetched from elsewhere.
    assert html.count("<script") == 1 and "<style" not in html and "style=" not in html and "http" not in html
    script = client.get("/display.js")
    assert script.mimetype == "text/javascript"
    js = script.get_data(as_text=True)
    assert "textContent" in js and "innerHTML" not in js and "setTimeout(poll, 300)" in js
    assert client.get("/display.css").mimetype == "text/css"
    state.update(Verdict.denied())
    answer = client.get("/state")
    assert answer.get_json()["outcome"] == "denied"
    for response in (page, script, answer):
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
    assert client.post("/state").status_code == 405
    assert client.get("/static/x.js").status_code == 404


def test_names_travel_as_data_not_markup(state):
    state.update(Verdict.accepted("<img src=x onerror=alert(1)>"))
    answer = create_display_app(state).test_client().get("/state")
    # JSON, never sniffed as HTML, and the page puts it in place with textContent only.
    assert answer.mimetype == "application/json" and answer.headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(answer.get_data(as_text=True))["title"] == "<img src=x onerror=alert(1)>"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_server_on_a_free_port():
    display = build_display(DisplayConfig(enabled=True, bind=f"127.0.0.1:{free_port()}"), "gate-north-1")
    assert display is not None
    feedback, server = display
    server.start()
    try:
        feedback.show(Verdict.accepted("Eileen Collins"))
        with urllib.request.urlopen(server.url + "state", timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            assert json.load(response)["title"] == "Eileen Collins"
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert b"/display.js" in response.read()
    finally:
        server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "state", timeout=2)


def test_port_zero_and_a_taken_port(state):
    server = DisplayServer(state, "127.0.0.1", 0)
    server.start()
    try:
        assert server.port > 0
        clash = DisplayServer(state, "127.0.0.1", server.port)
        with pytest.raises(DisplayError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            clash.start()
    finally:
        server.stop()
    server.stop()  # idempotent


def test_display_config():
    cfg = DisplayConfig()
    assert (cfg.enabled, cfg.bind, cfg.idle_after_s) == (False, "127.0.0.1:8090", 5.0)
    assert cfg.address == ("127.0.0.1", 8090) and build_display(cfg, "gate-north-1") is None
    assert DisplayConfig(bind="[::1]:8090").address == ("::1", 8090)
    assert DisplayConfig(bind="localhost:80").address == ("localhost", 80)
    for bad in ({"bind": "8090"}, {"bind": "127.0.0.1:0"}, {"bind": "127.0.0.1:70000"}, {"bind": "http://x:1"}):
        with pytest.raises(ValidationError, match="HOST:PORT"):
            DisplayConfig(**bad)
    for bad in ({"idle_after_s": 0.5}, {"idle_after_s": 61}, {"colour": "red"}):
        with pytest.raises(ValidationError):
            DisplayConfig(**bad)
