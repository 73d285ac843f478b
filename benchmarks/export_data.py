"""Data for the export benchmark: companies, sites, shifts, guards and a month of duty records, bulk-inserted."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, insert

from protocol.cards import mask_card_number, resident_id_check_character
from server.duty.tables import DutyRecordRow, ShiftRow
from server.exports.rows import month_days
from server.models import Assignment, Company, Credential, Guard, Post, Site

CHUNK = 5000  # rows per INSERT round trip
TZ = "Asia/Shanghai"
UTC_OFFSET = timedelta(hours=8)
# What a month of a real guard force looks like, roughly: mostly present, a few late, the odd absence.
STATUSES = (
    ("present", 0.86),
    ("late", 0.05),
    ("early_leave", 0.03),
    ("absent", 0.02),
    ("missing_check_out", 0.02),
    ("late_and_early_leave", 0.02),
)


def _insert(engine: Engine, table, rows: list[dict]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[start : start + CHUNK])


def _resident_id(n: int) -> str:
    first17 = f"440305{1970 + n % 30}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + resident_id_check_character(first17)


def _record(rng: random.Random, guard_id: str, site: int, shift: str, day: date, start_h: int) -> dict:
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    start = datetime.combine(day, datetime.min.time()) + timedelta(hours=start_h) - UTC_OFFSET
    late = rng.randint(6, 40) if "late" in status else 0
    early = rng.randint(6, 60) if "early" in status else 0
    overtime = rng.choice((0, 0, 0, 15, 30)) if status == "present" else 0
    first_in = None if status == "absent" else start + timedelta(minutes=late or -rng.randint(1, 10))
    last_out = (
        None if status in ("absent", "missing_check_out") else start + timedelta(hours=8, minutes=overtime - early)
    )
    worked = int((last_out - first_in).total_seconds() // 60) if first_in and last_out else 0
    return {
        "guard_id": guard_id,
        "site_id": f"site-{site:03d}",
        "post_id": f"post-{site:03d}",
        "shift_id": shift,
        "date": day,
        "status": status,
        "first_in": first_in,
        "last_out": last_out,
        "minutes_worked": worked,
        "overtime_minutes": overtime,
        "late_minutes": late,
        "early_leave_minutes": early,
        "check_in_method": None if first_in is None else rng.choice(("face", "face", "face", "card")),
        "check_in_distance": None,
        "punch_ids": [],
        "corrected": rng.random() < 0.01,
        "computed_at": datetime(2026, 1, 1),
    }


def populate(engine: Engine, guards: int, sites: int, month: str, seed: int = 7) -> int:
    """``guards`` guards over ``sites`` sites, each rostered on 26 days of ``month``; returns duty records."""
    rng = random.Random(seed)
    days = month_days(month)
    _insert(engine, Company.__table__, [
        {"company_id": f"co-{n}", "name": f"保安服务公司 {n}", "filing_status": "filed", "home_province": "44",
         "created_at": datetime(2020, 1, 1)} for n in range(2)
    ])  # fmt: skip
    _insert(engine, Site.__table__, [
        {"site_id": f"site-{n:03d}", "name": f"驻勤点 {n}", "address": "", "company_id": f"co-{n % 2}",
         "province": "44", "timezone": TZ, "card_salt": "00" * 16, "created_at": datetime(2020, 1, 1)}
        for n in range(sites)
    ])  # fmt: skip
    _insert(engine, Post.__table__, [
        {"post_id": f"post-{n:03d}", "site_id": f"site-{n:03d}", "name": "Gate", "created_at": datetime(2020, 1, 1)}
        for n in range(sites)
    ])  # fmt: skip
    _insert(engine, ShiftRow.__table__, [
        {"shift_id": f"site-{n:03d}-{name}", "post_id": f"post-{n:03d}", "site_id": f"site-{n:03d}", "name": name,
         "start": start, "end": end, "checkin_window_min": 60, "late_grace_min": 5, "early_leave_grace_min": 5,
         "patrol_interval_min": None, "tz": TZ}
        for n in range(sites) for name, start, end in (("day", "08:00", "16:00"), ("night", "22:00", "06:00"))
    ])  # fmt: skip
    guard_rows, credentials, postings, records = [], [], [], []
    for n in range(guards):
        guard_id, site = f"G-{n:05d}", n % sites
        number = _resident_id(n)
        guard_rows.append({
            "guard_id": guard_id, "name": f"保安员{n}", "id_number_masked": mask_card_number(number),
            "id_number_sha256": f"{n:064x}", "company_id": f"co-{site % 2}", "created_at": datetime(2020, 1, 1),
        })  # fmt: skip
        credentials.append({
            "guard_id": guard_id, "kind": "certificate", "number_masked": f"GD******{n % 10000:04d}",
            "number_digest_sha256": f"{n:064x}", "number_encrypted": b"-", "issued_on": date(2020, 1, 1),
            "valid_until": date(2030, 1, 1) if n % 50 else date(2026, 1, 15), "created_at": datetime(2020, 1, 1),
        })  # fmt: skip
        postings.append({"guard_id": guard_id, "site_id": f"site-{site:03d}", "company_id": f"co-{site % 2}",
                         "start": datetime(2020, 1, 1), "end": None})  # fmt: skip
        night = n % 3 == 0
        off = set(rng.sample(range(len(days)), len(days) - 26))
        for i, day in enumerate(days):
            if i in off:
                continue
            shift = f"site-{site:03d}-{'night' if night else 'day'}"
            records.append(_record(rng, guard_id, site, shift, day, 22 if night else 8))
    _insert(engine, Guard.__table__, guard_rows)
    _insert(engine, Credential.__table__, credentials)
    _insert(engine, Assignment.__table__, postings)
    _insert(engine, DutyRecordRow.__table__, records)
    return len(records)
