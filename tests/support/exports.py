"""A small registry with November 2026 duty logs for export tests: two companies, three sites, four guards."""

from __future__ import annotations

from datetime import date, datetime

from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from protocol.cards import resident_id_check_character
from server import companies, users
from server.duty.service import import_shifts
from server.duty.tables import DutyRecordRow
from server.lookup_digests import ServerCipher
from server.registry import Certificate, add_guard

PASSWORD = "blue harbour 7 lanterns"
MONTH = "2026-11"
EVIL_NAME = '=HYPERLINK("http://evil","x")'
SHIFTS = """shift_id,post_id,site_id,name,start,end,checkin_window_min,late_grace_min,early_leave_grace_min,\
patrol_interval_min,tz
north-day,north-gate,north,Day,08:00,16:00,60,5,5,,Asia/Shanghai
north-night,north-gate,north,Night,22:00,06:00,60,5,5,,Asia/Shanghai
south-day,south-gate,south,Day,08:00,16:00,60,5,5,,Asia/Shanghai
bj-day,bj-door,bj,Day,09:00,17:00,60,5,5,,Asia/Shanghai
"""
# guard -> (name, site, employer, resident ID first 17 digits)
GUARDS = {
    "g-north": ("李娜", "north", "acme", "11010519880101123"),
    "g-evil": (EVIL_NAME, "north", "acme", "11010519900202234"),
    "g-south": ("+1+1", "south", "acme", "44030519910303345"),
    "g-bj": ("@SUM(A1)", "bj", "zenith", "11010819920404456"),
}


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


def record(guard: str, site: str, shift: str | None, day: date, status: str, **fields) -> DutyRecordRow:
    values = {"minutes_worked": 0, "overtime_minutes": 0, "late_minutes": 0, "early_leave_minutes": 0}
    values |= {"punch_ids": [], "first_in": None, "last_out": None, "check_in_method": None}
    values |= fields
    post = f"{site}-gate" if site != "bj" else "bj-door"
    return DutyRecordRow(guard_id=guard, site_id=site, post_id=post if shift else None, shift_id=shift, date=day,
                         status=status, **values)  # fmt: skip


def seed(session: Session) -> dict[str, str]:
    """The registry, duty records and one user per role (password PASSWORD); returns role -> API token."""
    cipher = ServerCipher(Fernet.generate_key())
    companies.add_company(session, "acme", "Acme 保安", home_province="44", filing_status="filed")
    companies.add_company(session, "zenith", "-Zenith", home_province="11", filing_status="filed")
    for site, name, company, province in (
        ("north", "North gate", "acme", "44"),
        ("south", "South gate", "acme", "44"),
        ("bj", "Beijing office", "zenith", "11"),
    ):
        companies.add_site(session, site, name, tz="Asia/Shanghai", company_id=company, province=province)
    companies.add_post(session, "north-gate", "north", "North gate post")
    companies.add_post(session, "south-gate", "south", "South gate post")
    companies.add_post(session, "bj-door", "bj", "Front door")
    import_shifts(session, SHIFTS)
    for guard, (name, site, employer, first17) in GUARDS.items():
        certificate = Certificate(f"GD2024{first17[-6:]}", date(2024, 1, 1), date(2026, 11, 15))
        add_guard(
            session,
            guard,
            name,
            [site],
            cipher=cipher,
            id_number=resident_id(first17),
            company_id=employer,
            certificate=certificate if guard != "g-south" else None,
        )
    # g-north: a late day shift on the 2nd (UTC times: 08:07-16:01 in Shanghai), a night shift on the 3rd,
    # absent on the 4th; everyone else present on the 2nd.
    session.add_all(
        [
            record("g-north", "north", "north-day", date(2026, 11, 2), "late", first_in=datetime(2026, 11, 2, 0, 7),
                   last_out=datetime(2026, 11, 2, 8, 1), minutes_worked=474, late_minutes=7, check_in_method="face"),
            record("g-north", "north", "north-night", date(2026, 11, 3), "present",
                   first_in=datetime(2026, 11, 3, 13, 58), last_out=datetime(2026, 11, 3, 22, 30),
                   minutes_worked=510, overtime_minutes=30, check_in_method="card", corrected=True),
            record("g-north", "north", "north-day", date(2026, 11, 4), "absent"),
            record("g-north", "north", None, date(2026, 11, 4), "unscheduled", first_in=datetime(2026, 11, 4, 12, 0),
                   last_out=datetime(2026, 11, 4, 13, 0), minutes_worked=60, check_in_method="face"),
            record("g-evil", "north", "north-day", date(2026, 11, 2), "present", first_in=datetime(2026, 11, 2, 0, 0),
                   last_out=datetime(2026, 11, 2, 8, 0), minutes_worked=480, check_in_method="face"),
            record("g-south", "south", "south-day", date(2026, 11, 2), "present",
                   first_in=datetime(2026, 11, 2, 0, 0), last_out=datetime(2026, 11, 2, 8, 0), minutes_worked=480),
            record("g-bj", "bj", "bj-day", date(2026, 11, 2), "present", first_in=datetime(2026, 11, 2, 1, 0),
                   last_out=datetime(2026, 11, 2, 9, 0), minutes_worked=480),
            # October: outside the month, never exported.
            record("g-north", "north", "north-day", date(2026, 10, 31), "present", minutes_worked=480),
        ]
    )  # fmt: skip
    scopes = {
        "admin": {},
        "police": {"jurisdiction": "44"},
        "manager": {"company_id": "acme"},
        "supervisor": {"site_ids": ["north"]},
        "supervisor2": {"site_ids": ["south"]},
    }
    tokens = {}
    for name, scope in scopes.items():
        role = name.rstrip("2")
        _, tokens[name] = users.add_user(session, name, role, password=PASSWORD, **scope)
    session.flush()
    return tokens
