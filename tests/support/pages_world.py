"""A small world for the supervisor pages: two companies in two provinces, three sites, duty on one day, users.

- acme (province 44) guards north (post north-gate, terminal gate-n) and south (gate-s); zenith (11) guards bj.
- One guard per site, each rostered on DAY 08:00-16:00 Asia/Shanghai: g-south checked in late, g-bj on time,
  g-north only produced a borderline match at gate-n (denied, candidate g-north) and is absent until reviewed.
- Users with password PASSWORD: admin, police (44), manager (acme), supervisor (north), sup-south (south).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from server import companies, registry, users
from server.compliance import event_findings
from server.compliance import store as store_findings
from server.duty.rosters_csv import SHIFT_COLUMNS
from server.duty.service import import_roster, import_shifts, recompute
from server.models import Event

PASSWORD = "blue harbour 7 lanterns"
DAY = date(2026, 3, 2)
ID_NUMBER = "11010519491231002X"
TZ = ZoneInfo("Asia/Shanghai")
SITES = {"north": "acme", "south": "acme", "bj": "zenith"}
DEVICES = {"north": "gate-n", "south": "gate-s", "bj": "gate-b"}
USERS = {
    "admin": ("admin", {}),
    "police": ("police", {"jurisdiction": "44"}),
    "manager": ("manager", {"company_id": "acme"}),
    "supervisor": ("supervisor", {"site_ids": ["north"]}),
    "sup-south": ("supervisor", {"site_ids": ["south"]}),
}


def on_day(hour: int, minute: int, day: date = DAY) -> datetime:
    """A local wall-clock time on ``day`` at the sites, as naive UTC (how events are stored)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC).replace(tzinfo=None)


def stored_event(device: str, site: str, seq: int, type_: str, guard: str | None, at: datetime, **extra) -> Event:
    payload = {"evidence_sha256": "ab" * 32}
    if extra.get("candidate"):
        payload["candidate_guard_id"] = extra.pop("candidate")
    return Event(
        event_id=str(uuid.uuid4()),
        device_id=device,
        site_id=site,
        seq=seq,
        type=type_,
        method="face",
        guard_id=guard,
        captured_at=at,
        clock_synced=True,
        distance=extra.get("distance", 0.31),
        margin=extra.get("margin", 0.12),
        liveness="pass",
        payload=payload,
    )


def shifts_csv() -> str:
    lines = [",".join(SHIFT_COLUMNS)]
    for site in SITES:
        post = "north-gate" if site == "north" else f"{site}-post"
        lines.append(f"{site}-day,{post},{site},Day,08:00,16:00,60,5,5,,Asia/Shanghai")
    return "\n".join(lines) + "\n"


def build(s: Session, cipher: Fernet, *, with_borderline: bool = True) -> dict[str, str]:
    """Fill an empty database; returns each terminal's secret. Commit is the caller's."""
    companies.add_company(s, "acme", "Acme Security", home_province="44", filing_status="filed")
    companies.add_company(s, "zenith", "Zenith Guards", home_province="11", filing_status="filed")
    names = {"north": "North Mall", "south": "South Depot", "bj": "Beijing Office"}
    for site, company in SITES.items():
        province = "44" if company == "acme" else "11"
        companies.add_site(s, site, names[site], tz="Asia/Shanghai", company_id=company, province=province)
    companies.add_post(s, "north-gate", "north", "North gate")
    secrets = {}
    for site, device in DEVICES.items():
        _, secrets[device] = registry.add_device(s, site, device, post_id="north-gate" if site == "north" else None)
    posted = datetime(2026, 1, 1)
    valid = registry.Certificate("GD2024000123", issued_on=date(2024, 1, 1), valid_until=date(2030, 1, 1))
    registry.add_guard(
        s,
        "g-north",
        "Li Na",
        face_consent=True,
        cipher=cipher,
        id_number=ID_NUMBER,
        company_id="acme",
        certificate=valid,
    )
    registry.add_guard(s, "g-south", "Wang Fang", company_id="acme")
    registry.add_guard(s, "g-bj", "Zhao Lei", company_id="zenith")
    for guard, site in (("g-north", "north"), ("g-south", "south"), ("g-bj", "bj")):
        registry.assign(s, guard, site, posted)
    import_shifts(s, shifts_csv())
    import_roster(s, "date,shift_id,guard_id\n" + "".join(f"{DAY},{x}-day,g-{x}\n" for x in SITES))
    events = [
        stored_event("gate-s", "south", 1, "check_in", "g-south", on_day(8, 20)),
        stored_event("gate-s", "south", 2, "check_out", "g-south", on_day(16, 0)),
        stored_event("gate-b", "bj", 1, "check_in", "g-bj", on_day(7, 58)),
        stored_event("gate-b", "bj", 2, "check_out", "g-bj", on_day(16, 1)),
    ]
    if with_borderline:
        events.append(
            stored_event("gate-n", "north", 1, "denied", None, on_day(8, 2), candidate="g-north", distance=0.57)
        )
    s.add_all(events)
    s.flush()
    store_findings(s, event_findings(s, events))
    recompute(s, list(SITES), DAY, DAY, datetime.now(UTC))
    for name, (role, scope) in USERS.items():
        users.add_user(s, name, role, password=PASSWORD, **scope)
    return secrets
