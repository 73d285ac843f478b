"""Bulk import on a real database: CSV and XLSX with Chinese names, all or nothing, duplicates, local times."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from openpyxl import Workbook
from sqlalchemy import func, select

from protocol.cards import resident_id_check_character
from server import companies, registry
from server.db import make_engine, make_sessionmaker
from server.guard_records import guard_certificate_status, trajectory
from server.import_assignments import import_assignments
from server.importer import GUARD_COLUMNS, ImportRejected, import_guards
from server.lookup_digests import ServerCipher
from server.models import Assignment, Credential, Guard

TODAY = date(2025, 6, 1)


def resident_id(sequence: int, born: str = "19900101") -> str:
    first17 = f"440305{born}{sequence:03d}"
    return first17 + resident_id_check_character(first17)


def guard_row(guard_id: str, name: str, sequence: int, **cells: object) -> dict[str, object]:
    return {"guard_id": guard_id, "name": name, "id_number": resident_id(sequence)} | cells


GOOD = [
    guard_row("G-1", "张伟", 1, employer_company_id="acme", certificate_number="GD2024000001", site_ids="riverside",
              certificate_issued_on="2024-01-01", certificate_valid_until="2029-12-31", face_consent="是"),
    guard_row("G-2", "李娜", 2, site_ids="riverside; depot", face_consent="no"),
    guard_row("G-3", "欧阳 明", 3, employer_company_id="acme", certificate_number="GD2024000003",
              certificate_valid_until="2025-05-31"),
]  # fmt: skip


def csv_bytes(rows: list[dict[str, object]], encoding: str = "utf-8-sig", columns=GUARD_COLUMNS) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_file(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


class World:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)
        self.cipher = ServerCipher(Fernet.generate_key())
        with self.sessions.begin() as s:
            companies.add_company(s, "acme", "平安保安服务有限公司", home_province="44", filing_status="filed")
            companies.add_site(s, "riverside", "滨江小区", tz="Asia/Shanghai", company_id="acme")
            companies.add_site(s, "depot", "Depot", tz="UTC")

    def guards(self, source, name: str = "guards.csv", **kwargs):
        with self.sessions() as s:
            try:
                result = import_guards(s, self.cipher, source, name, today=TODAY, **kwargs)
            except ImportRejected:
                s.rollback()
                raise
            s.commit()
            return result

    def count(self, model) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def world(db_url: str):
    built = World(db_url)
    yield built
    built.engine.dispose()


def rejected(call) -> list[tuple[int, str, str]]:
    with pytest.raises(ImportRejected) as caught:
        call()
    return [(e.line, e.column, e.message) for e in caught.value.errors]


def test_csv_imports_guards_with_identity_certificate_and_postings(world: World) -> None:
    progress: list[tuple[int, int]] = []
    result = world.guards(csv_bytes(GOOD), progress=lambda done, total: progress.append((done, total)))
    assert (result.imported, result.dry_run) == (3, False)
    assert progress[0] == (1, 6) and progress[-1] == (6, 6) and len(progress) == 6
    with world.sessions() as s:
        zhang = s.get(Guard, "G-1")
        assert (zhang.name, zhang.company_id, zhang.sex, zhang.birth_date) == ("张伟", "acme", "male", date(1990, 1, 1))
        assert zhang.face_consent_at is not None and s.get(Guard, "G-2").face_consent_at is None
        assert zhang.id_number_masked == "440305********" + resident_id(1)[-4:]
        assert world.cipher.decrypt(zhang.id_number_encrypted).decode() == resident_id(1)
        assert s.get(Guard, "G-3").name == "欧阳 明"
        certificate = s.scalar(select(Credential).where(Credential.guard_id == "G-1"))
        assert (certificate.kind, certificate.issued_on, certificate.valid_until) == (
            "certificate",
            date(2024, 1, 1),
            date(2029, 12, 31),
        )
        assert [guard_certificate_status(s, g, TODAY) for g in ("G-1", "G-2", "G-3")] == ["valid", "missing", "expired"]
        # Li Na has no employer: each posting records the company guarding the site, if any.
        assert [(e.site_id, e.company_id) for e in trajectory(s, "G-2")] == [("riverside", "acme"), ("depot", None)]


def test_xlsx_imports_the_same_and_reads_typed_cells(world: World, tmp_path: Path) -> None:
    header = ["Guard_ID", "Name", "ID_Number", "Certificate_Number", "Certificate_Issued_On", "Face_Consent"]
    rows = [
        ["G-1", "张伟", resident_id(1), "GD2024000001", datetime(2024, 1, 1), True],
        [1002, "王芳", resident_id(2), 12345678, None, None],
    ]
    path = xlsx_file(tmp_path / "guards.xlsx", header, rows)
    assert world.guards(path).imported == 2
    with world.sessions() as s:
        assert s.get(Guard, "1002").name == "王芳" and s.get(Guard, "G-1").face_consent_at is not None
        issued = s.scalar(select(Credential.issued_on).where(Credential.guard_id == "G-1"))
        assert issued == date(2024, 1, 1)


def test_one_bad_row_imports_nothing_and_names_line_and_column(world: World) -> None:
    bad = guard_row("G-9", "赵敏", 9, id_number=resident_id(9)[:-1] + ("1" if resident_id(9)[-1] != "1" else "2"))
    errors = rejected(lambda: world.guards(csv_bytes([*GOOD, bad])))
    assert errors == [
        (5, "id_number", f"resident ID number: check character mismatch: the 18th character is "
                         f"'{bad['id_number'][-1]}', expected '{resident_id(9)[-1]}'; a digit is probably mistyped"),
    ]  # fmt: skip
    assert world.count(Guard) == world.count(Credential) == world.count(Assignment) == 0


def test_every_problem_is_reported_at_once(world: World) -> None:
    world.guards(csv_bytes(GOOD[:1]))
    rows = [
        guard_row("G-1", "Again", 1, certificate_number="GD2024000001"),  # all three taken in the database
        guard_row("bad id!", "=HYPERLINK(\"x\")", 4, employer_company_id="nobody", site_ids="riverside;moon",
                  certificate_issued_on="2030-01-01", face_consent="maybe"),
        guard_row("G-5", "", 5, certificate_number="GD-5", certificate_issued_on="2024-05-01",
                  certificate_valid_until="2024-04-30"),
        guard_row("G-5", "Twin", 5, certificate_number="gd-5"),  # same id, person and certificate as line 4
    ]  # fmt: skip
    errors = rejected(lambda: world.guards(csv_bytes(rows)))
    masked = "440305********" + resident_id(1)[-4:]
    masked5 = "440305********" + resident_id(5)[-4:]
    assert errors == [
        (2, "guard_id", "guard G-1 already exists"),
        (2, "id_number", f"ID number {masked} is already registered to guard G-1"),
        (2, "certificate_number", "GD******0001 is already registered to guard G-1"),
        (3, "guard_id", "guard_id 'bad id!' is not valid: use 1-64 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit"),
        (3, "name", "looks like a spreadsheet formula; formulas are not evaluated, enter the value itself"),
        (3, "employer_company_id", "no company nobody; add it with 'guardpost companies add'"),
        (3, "certificate_number", "is required when certificate dates are given"),
        (3, "certificate_issued_on", "2030-01-01 is in the future"),
        (3, "site_ids", "no site moon; add it with 'guardpost sites add'"),
        (3, "face_consent", "'maybe' is neither yes nor no"),
        (4, "name", "is required"),
        (4, "certificate_valid_until", "2024-04-30 is before the issue date 2024-05-01"),
        (5, "guard_id", "guard G-5 is also on line 4"),
        (5, "id_number", f"the same ID number ({masked5}) is also on line 4"),
        (5, "certificate_number", "certificate **-5 is also on line 4"),
    ]  # fmt: skip
    assert world.count(Guard) == 1
    assert all(resident_id(n) not in message for n in (1, 5) for _l, _c, message in errors)


def test_gb18030_csv_from_chinese_excel(world: World) -> None:
    assert world.guards(csv_bytes(GOOD, encoding="gb18030")).imported == 3
    with world.sessions() as s:
        assert s.get(Guard, "G-3").name == "欧阳 明"


def test_dry_run_checks_everything_and_writes_nothing(world: World) -> None:
    result = world.guards(csv_bytes(GOOD), dry_run=True)
    assert (result.imported, result.dry_run) == (3, True) and world.count(Guard) == 0


def test_header_and_file_problems(world: World, tmp_path: Path) -> None:
    assert rejected(lambda: world.guards(b"guard_id,name,nickname\nG-1,A,B\n")) == [
        (1, "nickname", f"unknown column; the columns are {', '.join(GUARD_COLUMNS)}"),
        (1, "id_number", "required column is missing from the header"),
    ]
    assert rejected(lambda: world.guards(b"\xd0\xcf\x11\xe0", "old.xls"))[0][2].startswith("old Excel .xls files")
    numeric = xlsx_file(tmp_path / "n.xlsx", ["guard_id", "name", "id_number"], [["G-1", "A", 440305199001011230]])
    [(line, column, message)] = rejected(lambda: world.guards(numeric))
    assert (line, column) == (2, "id_number") and "keeps only 15 digits; format the column as Text" in message
    big = tmp_path / "big.csv"
    big.write_bytes(b"guard_id\n" + b"x" * (20 * 1024 * 1024))
    assert rejected(lambda: world.guards(big)) == [(0, "", "big.csv is 20.0 MB; at most 20 MB can be imported")]


def test_assignments_in_site_local_time_with_duplicates_refused(world: World) -> None:
    world.guards(csv_bytes(GOOD))
    columns = ("guard_id", "site_id", "start", "end", "company_id")
    history = [
        {"guard_id": "G-2", "site_id": "riverside", "start": "2020-01-01", "end": "2021-06-30 18:00"},
        {"guard_id": "G-2", "site_id": "depot", "start": "2021-07-01T08:00:00+08:00", "company_id": "acme"},
    ]
    with world.sessions() as s:
        assert import_assignments(s, csv_bytes(history, columns=columns)).imported == 2
        s.commit()
    with world.sessions() as s:
        entries = [(e.site_id, e.company_id, e.start, e.end) for e in trajectory(s, "G-2")]
    assert entries[:2] == [
        ("riverside", "acme", datetime(2019, 12, 31, 16, 0), datetime(2021, 6, 30, 10, 0)),
        ("depot", "acme", datetime(2021, 7, 1, 0, 0), None),
    ]
    again = [
        history[0],
        {"guard_id": "G-1", "site_id": "depot", "start": "2022-01-01", "end": "2021-01-01"},
        {"guard_id": "ghost", "site_id": "moon", "start": "soon"},
        {"guard_id": "G-1", "site_id": "depot", "start": "2023-01-01", "company_id": "nobody"},
        {"guard_id": "G-1", "site_id": "depot", "start": "2023-01-01 00:00"},
    ]
    with world.sessions() as s:
        errors = rejected(lambda: import_assignments(s, csv_bytes(again, columns=columns)))
    assert errors == [
        (2, "start", "G-2 at riverside from 2019-12-31 16:00 UTC is already recorded"),
        (3, "end", "is not after the start"),
        (4, "guard_id", "no guard ghost; import or add the guard first"),
        (4, "site_id", "no site moon; add it with 'guardpost sites add'"),
        (5, "company_id", "no company nobody; add it with 'guardpost companies add'"),
        (6, "start", "G-1 at depot from 2023-01-01 00:00 UTC is also on line 5"),
    ]
    with world.sessions() as s:
        assert len(trajectory(s, "G-2")) == 4


def test_a_registry_guard_and_an_imported_one_cannot_share_an_id_number(world: World) -> None:
    with world.sessions.begin() as s:
        registry.add_guard(s, "OLD", "Old", cipher=world.cipher, id_number=resident_id(2))
    errors = rejected(lambda: world.guards(csv_bytes(GOOD)))
    assert errors == [
        (3, "id_number", f"ID number 440305********{resident_id(2)[-4:]} is already registered to guard OLD")
    ]
