"""Provincial reporting in tests: a registry to report, configs derived from the example, a real receiver."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from protocol.cards import resident_id_check_character
from server import companies
from server.duty.service import import_roster, import_shifts, recompute
from server.lookup_digests import ServerCipher
from server.models import utcnow
from server.registry import Certificate, add_guard
from server.reporting.receiver import Store, create_receiver, load_items

EXAMPLE = Path(__file__).parents[2] / "docs" / "reporting.example.toml"
SECRET = "test-reporting-secret-0123456789abcdef"
SHIFTS = (
    "shift_id,post_id,site_id,name,start,end,checkin_window_min,late_grace_min,early_leave_grace_min,"
    "patrol_interval_min,tz\n"
    "a-day,a-gate,site-a,Day,08:00,16:00,30,5,5,,Asia/Shanghai\n"
    "b-day,b-gate,site-b,Day,08:00,16:00,30,5,5,,Asia/Shanghai\n"
    "bj-day,bj-gate,site-bj,Day,08:00,16:00,30,5,5,,Asia/Shanghai\n"
)


def id_number(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


ID_NUMBERS = {
    "G-1": id_number("44010619900101123"),
    "G-2": id_number("44010619920202224"),
    "G-3": id_number("11010519850303345"),
}


class Registry:
    """Two Guangdong companies and a Beijing one, a site and a guard each, three days of rostered shifts."""

    def __init__(self, sessions, days: int = 3, today: date | None = None):
        self.sessions = sessions
        self.key = Fernet.generate_key()
        self.cipher = ServerCipher(self.key)
        self.today = today or utcnow().date()
        self.days = [self.today - timedelta(days=n) for n in range(days, 0, -1)]
        with sessions.begin() as s:
            companies.add_company(s, "C-01", "平安保安服务有限公司", home_province="44", filing_status="filed")
            companies.add_company(s, "C-02", "安达保安有限公司", home_province="44", filing_status="filed")
            companies.add_company(s, "C-BJ", "京安保安公司", home_province="11", filing_status="filed")
            companies.add_site(s, "site-a", "Riverside Mall", tz="Asia/Shanghai", company_id="C-01", province="44")
            companies.add_site(s, "site-b", "Harbour Tower", tz="Asia/Shanghai", company_id="C-02", province="44")
            companies.add_site(s, "site-bj", "Beijing office", tz="Asia/Shanghai", company_id="C-BJ", province="11")
            postings = (("G-1", "C-01", "site-a"), ("G-2", "C-02", "site-b"), ("G-3", "C-BJ", "site-bj"))
            for guard_id, employer, site in postings:
                add_guard(
                    s,
                    guard_id,
                    f"Guard {guard_id}",
                    [site],
                    cipher=self.cipher,
                    id_number=ID_NUMBERS[guard_id],
                    company_id=employer,
                    certificate=Certificate(f"GD2024{guard_id[-1]}00123", date(2024, 1, 1), date(2030, 12, 31)),
                )
            import_shifts(s, SHIFTS)
            roster = ["date,shift_id,guard_id"]
            for day in self.days:
                roster += [f"{day},a-day,G-1", f"{day},b-day,G-2", f"{day},bj-day,G-3"]
            import_roster(s, "\n".join(roster) + "\n")
        self.recompute()

    def recompute(self) -> None:
        with self.sessions.begin() as s:
            recompute(s, ["site-a", "site-b", "site-bj"], self.days[0], self.days[-1], datetime.now().astimezone())


def write_config(folder: Path, endpoint: str, *, name: str = "reporting.toml", replace: dict | None = None) -> Path:
    """The example config pointed at ``endpoint`` with the test secret and quick retries; ``replace`` more keys."""
    secret = folder / "reporting.secret"
    secret.write_text(SECRET + "\n")
    values = {
        "endpoint": f'"{endpoint}"',
        "secret_file": f'"{secret}"',
        "base_delay_s": "1",
        "max_delay_s": "10",
        "max_attempts": "3",
        "jitter": "0",
        "connect_s": "2",
        "read_s": "3",
        "interval_s": "1",
        **(replace or {}),
    }
    text = EXAMPLE.read_text("utf-8")
    for key, value in values.items():
        text, count = re.subn(rf"^{re.escape(key)} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert count == 1, f"the example config has no line for {key}"
    path = folder / name
    path.write_text(text, "utf-8")
    return path


@contextmanager
def receiver(store_dir: Path | None = None, port: int = 0, **options) -> Iterator[tuple[str, Store]]:
    """The reference receiver on a real localhost socket, in a thread; yields its upload URL and store."""
    store = Store(store_dir)
    app = create_receiver(SECRET, load_items(None), store, **options)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/upload", store
    finally:
        server.shutdown()
        thread.join(timeout=10)


class Clock:
    """A settable clock for the reporter's schedule (backoff) without sleeping."""

    def __init__(self):
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
