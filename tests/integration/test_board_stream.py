"""The live board's event stream: the board at once, each change within a poll, keep-alives, the end of a login."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event as sa_event
from sqlalchemy import select

from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.lookup_digests import ServerCipher
from server.models import User, utcnow
from server.scope import Scope
from server.users import new_token
from server.web import create_app
from server.web.board_stream import KEEPALIVE_S, REFRESH_S, Viewer, board_stream
from server.web.shared_cache import MicroCache
from tests.support import pages_world as world
from tests.support.web import login, page_csrf


class Connections:
    """How many pooled connections are out right now."""

    def __init__(self, engine):
        self.out = 0
        sa_event.listen(engine, "checkout", lambda *_: self._add(1))
        sa_event.listen(engine, "checkin", lambda *_: self._add(-1))

    def _add(self, n: int) -> None:
        self.out += n


@pytest.fixture
def app_world(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        world.build(s, ServerCipher(Fernet.generate_key()))
    app = create_app(ServerSettings(db_url=db_url), engine=engine)
    yield app, engine, sessions
    engine.dispose()


def messages(chunks):
    """Parsed (event, data) pairs and comments from the stream's chunks, one chunk at a time."""
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith(":"):
            yield "comment", text
        elif text.startswith("event:"):
            head, data = text.strip().split("\n", 1)
            yield head.removeprefix("event: "), json.loads(data.removeprefix("data: "))
        else:
            yield "control", text


def next_board(stream, limit: int = 10) -> dict:
    for _ in range(limit):
        kind, data = next(stream)
        if kind == "board":
            return data
    raise AssertionError(f"no board in {limit} messages")


def add_check_in(sessions, guard="g-north", site="north", device="gate-n", seq=9):
    with sessions.begin() as s:
        s.add(world.stored_event(device, site, seq, "check_in", guard, utcnow() - timedelta(seconds=5)))


def test_the_stream_sends_the_board_then_each_change_without_holding_a_connection(app_world):
    app, engine, sessions = app_world
    client = app.test_client()
    login(client, "supervisor", world.PASSWORD)
    response = client.get("/board/stream", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    connections = Connections(engine)
    stream = messages(response.response)
    assert next(stream) == ("control", "retry: 3000\n\n")
    first = next_board(stream)
    assert [s["site_id"] for s in first["sites"]] == ["north"]  # the supervisor's scope only
    assert first["sites"][0]["on_duty"] == []
    assert connections.out == 0  # between polls the stream holds no database connection
    add_check_in(sessions)
    add_check_in(sessions, "g-south", "south", "gate-s")  # outside the scope: never shown
    changed = next_board(stream)
    assert [g["guard_id"] for g in changed["sites"][0]["on_duty"]] == ["g-north"]
    assert [e["guard_id"] for e in changed["events"][:1]] == ["g-north"]
    assert all(e["site_id"] == "north" for e in changed["events"])
    assert connections.out == 0
    response.close()


def test_the_stream_ends_when_the_login_ends(app_world):
    app, _engine, _sessions = app_world
    client = app.test_client()
    login(client, "manager", world.PASSWORD)
    csrf = page_csrf(client)
    stream = messages(client.get("/board/stream", buffered=False).response)
    assert {s["site_id"] for s in next_board(stream)["sites"]} == {"north", "south"}
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    assert next(stream)[0] == "expired"
    with pytest.raises(StopIteration):
        next(stream)


def test_the_stream_needs_a_login(app_world):
    app, _engine, _sessions = app_world
    assert app.test_client().get("/board/stream").status_code == 401


def admin_viewer(sessions) -> Viewer:
    """A script's stream: the admin with an API token."""
    with sessions() as s:
        admin = s.scalar(select(User).where(User.name == "admin"))
        return Viewer(user_id=admin.id, scope=Scope(role="admin"), session_sha256=None, token_sha256=admin.token_sha256)


def test_keep_alives_between_changes_and_a_full_board_now_and_then(app_world):
    _app, _engine, sessions = app_world
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    stream = board_stream(sessions, admin_viewer(sessions), clock=lambda: now[0], sleep=sleep, max_s=REFRESH_S * 3)
    stream = messages(stream)
    kinds = [kind for kind, _ in stream]
    # Nothing changes: a board every REFRESH_S (30 s), a keep-alive comment in each quiet KEEPALIVE_S (15 s) between.
    assert (KEEPALIVE_S, REFRESH_S) == (15.0, 30.0)
    assert kinds == ["control", "board", "comment", "board", "comment", "board", "comment", "board"]
    assert now[0] == REFRESH_S * 3


def test_a_token_viewer_stops_when_the_token_changes(app_world):
    _app, _engine, sessions = app_world
    viewer = admin_viewer(sessions)
    stream = messages(board_stream(sessions, viewer, sleep=lambda _s: None))
    next_board(stream)
    with sessions.begin() as s:
        new_token(s.get(User, viewer.user_id))
    assert next(stream)[0] == "expired"


def test_viewers_of_one_scope_share_each_board_build(app_world, monkeypatch):
    app, _engine, sessions = app_world
    import server.web.board_stream as board_stream_module

    builds = []
    real = board_stream_module.live_board
    monkeypatch.setattr(board_stream_module, "live_board", lambda *a: builds.append(1) or real(*a))
    with sessions() as s:
        user = s.scalar(select(User).where(User.name == "supervisor"))
        viewer = Viewer(user.id, Scope("supervisor", site_ids=frozenset({"north"})), None, user.token_sha256)
    cache = MicroCache(ttl_s=60)
    first, second = (board_stream(sessions, viewer, sleep=lambda _s: None, cache=cache) for _ in "ab")
    boards = [next(s) and next(s) for s in (first, second)]  # the retry line, then the board
    assert boards[0] == boards[1] and boards[0].startswith("event: board\n")
    assert len(builds) == 1
