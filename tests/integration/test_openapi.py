"""The served OpenAPI document is valid and describes exactly the API routes the app has."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from server.config import ServerSettings
from server.db import make_engine
from server.web import create_app

PREFIX = "/api/v1"


def api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX) :])
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_the_document_is_valid_openapi_and_matches_the_routes(db_url):
    engine = make_engine(db_url)
    app = create_app(ServerSettings(db_url=db_url), engine=engine)
    response = app.test_client().get(f"{PREFIX}/openapi.json")
    engine.dispose()
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented == api_routes(app), "describe new API routes in server/web/openapi.py"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and operation["responses"], (method, path)
