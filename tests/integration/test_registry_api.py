"""Registry API: guard import upload (roles, 422 report, limits) and the read endpoints, with masked identities."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from cryptography.fernet import Fernet
from openpyxl import Workbook
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from server import companies, registry, users
from server.config import ServerSettings
from server.db import make_engine, make_sessionmaker
from server.lookup_digests import ServerCipher
from server.models import Guard
from server.web import create_app
from tests.support.ids import resident_id

IMPORT = "/api/v1/imports/guards"


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class Api:
    def __init__(self, url: str, cipher: Fernet | None):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.client = create_app(ServerSettings(db_url=url), engine=self.engine, cipher=cipher).test_client()
        self.tokens = {}
        with self.sessions.begin() as s:
            companies.add_company(
                s, "acme", "Acme 保安", home_province="11", filing_status="filed", cross_region=["44"]
            )
            companies.add_site(s, "hq", "总部", tz="Asia/Shanghai", company_id="acme", province="北京")
            companies.add_post(s, "hq-gate", "hq", "Main gate")
            scopes = {
                "admin": {},
                "manager": {"company_id": "acme"},
                "supervisor": {"site_ids": ["hq"]},
                "police": {"jurisdiction": "11"},
            }
            for role, scope in scopes.items():
                _, self.tokens[role] = users.add_user(s, f"{role}-user", role, **scope)

    def upload(self, data: bytes, name: str = "guards.csv", role: str = "manager", query: str = ""):
        # Encoded in memory: the test client spools large bodies to a temporary file it never closes.
        boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), name)})
        return self.client.post(
            IMPORT + query,
            data=body,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            content_type=f"multipart/form-data; boundary={boundary}",
        )

    def get(self, path: str, role: str = "police"):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[role]}"})


@pytest.fixture
def api(db_url: str):
    built = Api(db_url, ServerCipher(Fernet.generate_key()))
    yield built
    built.engine.dispose()


def guards_csv(*rows: str) -> bytes:
    return ("guard_id,name,id_number,site_ids,face_consent\n" + "".join(row + "\n" for row in rows)).encode("utf-8")


def test_a_manager_imports_guards_and_a_bad_file_gets_a_422_report(api: Api) -> None:
    answer = api.upload(guards_csv(f"G-1,张伟,{resident_id(11)},hq,yes", f"G-2,李娜,{resident_id(12)},,no"))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"imported": 2, "dry_run": False}
    bad = api.upload(guards_csv(f"G-3,王芳,{resident_id(13)},hq,yes", f"G-1,Again,{resident_id(14)[:17]},,"))
    assert bad.status_code == 422
    assert bad.get_json() == {
        "errors": [
            {"line": 3, "column": "guard_id", "message": "guard G-1 already exists"},
            {"line": 3, "column": "id_number", "message": "resident ID number has 17 characters, expected 18"},
        ]
    }
    with api.sessions() as s:
        assert s.get(Guard, "G-3") is None and s.get(Guard, "G-1").name == "张伟"


def test_admin_may_upload_xlsx_and_dry_run(api: Api) -> None:
    data = xlsx([["guard_id", "name", "id_number"], ["G-7", "欧阳明", resident_id(17)]])
    dry = api.upload(data, "guards.xlsx", role="admin", query="?dry_run=1")
    assert dry.status_code == 200 and dry.get_json() == {"imported": 1, "dry_run": True}
    with api.sessions() as s:
        assert s.get(Guard, "G-7") is None
    assert api.upload(data, "guards.xlsx", role="admin").get_json()["imported"] == 1


@pytest.mark.parametrize("role", ["supervisor", "police"])
def test_other_roles_may_not_import(api: Api, role: str) -> None:
    answer = api.upload(guards_csv(f"G-1,A,{resident_id(1)},,"), role=role)
    assert answer.status_code == 403
    assert answer.get_json() == {"error": f"imports need the admin or manager role; this user is a {role}"}


def test_upload_mistakes_are_explained(api: Api) -> None:
    no_token = api.client.post(IMPORT, data={"file": (io.BytesIO(b"x"), "g.csv")}, content_type="multipart/form-data")
    assert no_token.status_code == 401
    no_file = api.client.post(IMPORT, data={"other": "x"}, headers={"Authorization": f"Bearer {api.tokens['admin']}"})
    assert no_file.status_code == 400 and "file field named 'file'" in no_file.get_json()["error"]
    too_big = api.upload(b"guard_id\n" + b"x" * (20 * 1024 * 1024 + 1))
    assert too_big.status_code == 413 and "larger than 20 MB" in too_big.get_json()["error"]
    unreadable = api.upload(b"\xd0\xcf\x11\xe0...", "old.xls")
    assert unreadable.status_code == 422 and unreadable.get_json()["errors"][0]["message"].startswith("old Excel")


def test_without_a_server_key_guard_import_is_unavailable(db_url: str) -> None:
    api = Api(db_url, cipher=None)
    try:
        answer = api.upload(guards_csv(f"G-1,A,{resident_id(1)},,"))
        assert answer.status_code == 503 and "no key" in answer.get_json()["error"]
    finally:
        api.engine.dispose()


def test_registry_reads_show_masked_identities_only(api: Api) -> None:
    api.upload(guards_csv(f"G-1,张伟,{resident_id(11)},hq,yes", f"G-2,李娜,{resident_id(12)},,no"))
    with api.sessions.begin() as s:
        registry.assign(s, "G-2", "hq", datetime(2020, 1, 1), end=datetime(2021, 1, 1))
    [company] = api.get("/api/v1/companies").get_json()["companies"]
    assert company["home_province"] == "110000" and company["home_province_name"] == "北京市"
    assert company["cross_region_filings"] == [{"province": "440000", "province_name": "广东省", "filed_on": None}]
    [site] = api.get("/api/v1/sites").get_json()["sites"]
    assert (site["timezone"], site["company_id"], site["province"]) == ("Asia/Shanghai", "acme", "110000")
    assert site["posts"] == [{"post_id": "hq-gate", "name": "Main gate"}]
    listing = api.get("/api/v1/guards?limit=1").get_json()
    assert [g["guard_id"] for g in listing["guards"]] == ["G-1"] and listing["next_after"] == "G-1"
    assert listing["guards"][0]["certificate_status"] == "missing"
    assert listing["guards"][0]["id_number_masked"] == "110105********" + resident_id(11)[-4:]
    rest = api.get("/api/v1/guards?limit=1&after=G-1").get_json()
    assert [g["guard_id"] for g in rest["guards"]] == ["G-2"] and rest["next_after"] is None
    assert [g["guard_id"] for g in api.get("/api/v1/guards?site=hq").get_json()["guards"]] == ["G-1"]
    detail = api.get("/api/v1/guards/G-2")
    body = detail.get_data(as_text=True)
    assert detail.status_code == 200 and resident_id(12) not in body
    trajectory = detail.get_json()["trajectory"]
    assert [(t["site_id"], t["company_id"], t["start"][:10], t["end"]) for t in trajectory] == [
        ("hq", "acme", "2020-01-01", "2021-01-01T00:00:00+00:00")
    ]
    assert api.get("/api/v1/guards/ghost").status_code == 404
    assert api.get("/api/v1/guards?limit=0").status_code == 400
