"""The gate's local screen: a tiny Flask app showing the latest verdict full-screen in a Chromium kiosk."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field, field_validator
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from edge_agent.feedback import Verdict

IDLE_MESSAGE = "Look at the camera or present your card"
_BIND = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")

# Only this app's own script and style; the page shows guard names, so nothing may frame or inject it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GuardPost gate</title>
<link rel="stylesheet" href="/display.css">
<script src="/display.js" defer></script>
</head>
<body>
<main id="panel" class="idle"><h1 id="title"></h1><p id="message"></p></main>
<footer><span id="terminal"></span><span>GuardPost</span></footer>
</body>
</html>
"""

STYLE = """html, body { margin: 0; height: 100%; overflow: hidden; cursor: none; background: #000; color: #fff;
  font-family: system-ui, sans-serif; }
#panel { position: fixed; inset: 0 0 8vh 0; box-sizing: border-box; padding: 4vw; display: flex;
  flex-direction: column; justify-content: center; align-items: center; text-align: center; }
#title { margin: 0 0 3vh; font-size: 9vw; line-height: 1.1; overflow-wrap: anywhere; }
#message { margin: 0; font-size: 4.5vw; line-height: 1.3; overflow-wrap: anywhere; }
footer { position: fixed; left: 0; right: 0; bottom: 0; height: 8vh; box-sizing: border-box; padding: 0 3vw;
  display: flex; justify-content: space-between; align-items: center; font-size: 3vh; background: #111; color: #bbb; }
.accepted { background: #1e7b34; }
.denied { background: #b3261e; }
.prompt { background: #f0a800; color: #000; }
.idle { background: #3c4043; }
.offline { background: #3c4043; color: #ffb4ab; }
"""

SCRIPT = """"use strict";
(function () {
  const OUTCOMES = ["accepted", "denied", "prompt", "idle"];
  const panel = document.getElementById("panel");
  const title = document.getElementById("title");
  const message = document.getElementById("message");
  const terminal = document.getElementById("terminal");
  let failures = 0;

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function render(state) {
    const outcome = OUTCOMES.includes(state.outcome) ? state.outcome : "idle";
    panel.className = outcome;
    title.textContent = outcome === "idle" ? clock() : String(state.title || "");
    const text = String(state.message || "");
    message.textContent = text === title.textContent ? "" : text;  // a prompt is often its own title
    terminal.textContent = String(state.terminal || "");
  }

  function offline() {
    panel.className = "offline";
    title.textContent = "Terminal not running";
    message.textContent = "Please call the supervisor.";
  }

  async function poll() {
    try {
      const response = await fetch("/state", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      failures = 0;
    } catch (err) {
      // One missed poll is a hiccup; about a second of them means the agent is down.
      failures += 1;
      if (failures >= 3) offline();
    }
    setTimeout(poll, 300);
  }

  poll();
})();
"""


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port); ValueError when malformed."""
    match = _BIND.match(bind)
    port = int(match["port"]) if match else 0
    if match is None or not 1 <= port <= 65535:
        raise ValueError(f"bind must be HOST:PORT with a port from 1 to 65535, as in 127.0.0.1:8090; got {bind!r}")
    return match["host"].strip("[]"), port


class DisplayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # Loopback by default: the page shows guards' names and only the Pi's own kiosk browser needs it.
    bind: str = "127.0.0.1:8090"
    idle_after_s: float = Field(default=5.0, ge=1.0, le=60.0)

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        parse_bind(value)
        return value

    @property
    def address(self) -> tuple[str, int]:
        return parse_bind(self.bind)


class DisplayState:
    """The latest verdict, shared between the capture loop and the web server's threads."""

    def __init__(self, terminal_id: str, idle_after_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.terminal_id = terminal_id
        self.idle_after_s = idle_after_s
        # Monotonic, not Verdict.at: the wall clock may jump when NTP first syncs after boot.
        self._clock = clock
        self._lock = threading.Lock()
        self._verdict = Verdict.idle()
        self._shown_at = clock()

    def update(self, verdict: Verdict) -> None:
        with self._lock:
            self._verdict = verdict
            self._shown_at = self._clock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            verdict, age = self._verdict, self._clock() - self._shown_at
        if verdict.outcome == "idle" or age >= self.idle_after_s:
            verdict = Verdict("idle", "", IDLE_MESSAGE, verdict.at)
        return {
            "outcome": verdict.outcome,
            "title": verdict.title,
            "message": verdict.message,
            "terminal": self.terminal_id,
        }


class DisplayFeedback:
    """A Feedback that puts verdicts on the gate's screen."""

    def __init__(self, state: DisplayState) -> None:
        self.state = state

    def show(self, verdict: Verdict) -> None:
        self.state.update(verdict)


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    # The kiosk must never show a stale verdict or an old script after an update.
    response.headers["Cache-Control"] = "no-store"
    return response


def create_display_app(state: DisplayState) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False
    app.after_request(_security_headers)

    @app.get("/")
    def page() -> Response:
        return Response(PAGE, mimetype="text/html")

    @app.get("/display.js")
    def script() -> Response:
        return Response(SCRIPT, mimetype="text/javascript")

    @app.get("/display.css")
    def style() -> Response:
        return Response(STYLE, mimetype="text/css")

    @app.get("/state")
    def current() -> Response:
        return jsonify(state.snapshot())

    return app


class DisplayError(RuntimeError):
    """The display server cannot start; the message says what to fix."""


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Three polls a second would otherwise fill the (volatile, size-capped) journal with access lines.
        pass


class DisplayServer:
    """Serves the display app from a daemon thread; port 0 picks a free port (see ``port``)."""

    def __init__(self, state: DisplayState, host: str = "127.0.0.1", port: int = 8090) -> None:
        self.state = state
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        if self._server is not None:
            return
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        try:
            # Bound here rather than by werkzeug, which prints and calls sys.exit() when the port is taken.
            listener = socket.create_server((self._host, self._port), family=family)
        except OSError as exc:
            raise DisplayError(
                f"the gate display cannot listen on {self._host}:{self._port} ({exc.strerror or exc}); "
                "change [display] bind or stop whatever holds that port"
            ) from None
        with listener:  # werkzeug duplicates the descriptor
            self._server = make_server(
                self._host,
                self._port,
                create_display_app(self.state),
                threaded=True,
                request_handler=_QuietHandler,
                fd=listener.fileno(),
            )
        # A short poll interval makes stop() quick; idle polling costs next to nothing.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="gate-display", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None


def build_display(cfg: DisplayConfig, terminal_id: str) -> tuple[DisplayFeedback, DisplayServer] | None:
    """The screen's Feedback and its (not yet started) server, or None when the display is disabled."""
    if not cfg.enabled:
        return None
    state = DisplayState(terminal_id, cfg.idle_after_s)
    host, port = cfg.address
    return DisplayFeedback(state), DisplayServer(state, host, port)
