"""Companies, sites, posts and guard identities on a real database: filings, certificate status, trajectory."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from protocol.cards import resident_id_check_character
from server import companies, registry
from server.db import make_engine, make_sessionmaker
from server.guard_records import guard_by_id_number, guard_certificate_status, guard_summary, trajectory
from server.lookup_digests import ServerCipher
from server.models import Assignment, Guard, Terminal
from server.registry import Certificate, RegistryError


def resident_id(born: str = "19900101", sequence: str = "123", area: str = "440305") -> str:
    first17 = area + born + sequence
    return first17 + resident_id_check_character(first17)


@pytest.fixture
def sessions(db_url: str):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def cipher() -> Fernet:
    return ServerCipher(Fernet.generate_key())


@pytest.fixture
def world(sessions):
    """Company acme (Guangdong, filed for Beijing) guarding site riverside; company beta (Beijing) guarding depot."""
    with sessions.begin() as s:
        companies.add_company(
            s, "acme", "平安保安服务有限公司", home_province="广东省", filing_status="filed", cross_region=["11"]
        )
        companies.add_company(s, "beta", "Beta Security", home_province="北京", credit_code="91350100M000100Y43")
        companies.add_site(s, "riverside", "滨江小区", tz="Asia/Shanghai", company_id="acme", province="44")
        companies.add_site(s, "depot", "Depot", tz="Asia/Urumqi", company_id="beta", address="1 Road")
    return sessions


def test_companies_store_filings_by_province_code(world) -> None:
    with world() as s:
        acme = s.get(companies.Company, "acme")
        assert (acme.home_province, acme.filing_status) == ("440000", "filed")
        assert [f.province for f in acme.cross_region_filings] == ["110000"]
        assert companies.may_work_in(acme, "110000") and companies.may_work_in(acme, "440000")
        assert not companies.may_work_in(acme, "310000")
        beta = s.get(companies.Company, "beta")
        assert beta.credit_code == "91350100M000100Y43" and not companies.may_work_in(beta, "110000")  # pending


def test_company_requests_are_checked(world) -> None:
    with world.begin() as s:
        with pytest.raises(RegistryError, match="company acme already exists"):
            companies.add_company(s, "acme", "Again", home_province="44")
        with pytest.raises(RegistryError, match="already registered to company beta"):
            companies.add_company(s, "gamma", "G", home_province="44", credit_code="91350100m000100y43")
        with pytest.raises(RegistryError, match="check character mismatch"):
            companies.add_company(s, "gamma", "G", home_province="44", credit_code="91350100M000100Y44")
        with pytest.raises(RegistryError, match="filing status 'approved' is not one of filed, pending, revoked"):
            companies.add_company(s, "gamma", "G", home_province="44", filing_status="approved")
        with pytest.raises(RegistryError, match="home province; no cross-region filing is needed"):
            companies.file_cross_region(s, "acme", "广东")
        with pytest.raises(RegistryError, match="already has a cross-region filing for 110000"):
            companies.file_cross_region(s, "acme", "北京市")
        companies.set_filing_status(s, "acme", "revoked")
        assert not companies.may_work_in(s.get(companies.Company, "acme"), "440000")


def test_sites_validate_time_zones_and_posts_place_terminals(world) -> None:
    with world.begin() as s:
        with pytest.raises(RegistryError, match="'Asia/Beijing' is not an IANA time zone name"):
            companies.add_site(s, "s2", "S2", tz="Asia/Beijing")
        with pytest.raises(RegistryError, match="site riverside already exists; change it with 'guardpost sites set'"):
            companies.add_site(s, "riverside", "again", tz="UTC")
        with pytest.raises(RegistryError, match="no company nobody"):
            companies.add_site(s, "s2", "S2", tz="UTC", company_id="nobody")
        companies.add_post(s, "riverside-north", "riverside", "北门")
        registry.add_device(s, "riverside", "gate-1", post_id="riverside-north")
        with pytest.raises(RegistryError, match="site depot has no post riverside-north"):
            registry.add_device(s, "depot", "gate-2", post_id="riverside-north")
        with pytest.raises(RegistryError, match="post riverside-north already exists"):
            companies.add_post(s, "riverside-north", "riverside", "again")
        # A site created implicitly by 'devices add' gets its time zone afterwards.
        registry.add_device(s, "annex", "gate-3")
        site = companies.update_site(s, "annex", tz="Asia/Shanghai", company_id="acme", province="广东省")
        assert (site.timezone, site.company_id, site.province) == ("Asia/Shanghai", "acme", "440000")
    with world() as s:
        assert s.get(Terminal, "gate-1").post_id == "riverside-north"


def test_guard_identity_is_encrypted_hashed_and_masked(world, cipher) -> None:
    number = resident_id(sequence="124")
    with world.begin() as s:
        registry.add_guard(s, "G-1", "张伟", ["riverside"], cipher=cipher, id_number=number.lower(), company_id="acme")
    with world() as s:
        guard = s.get(Guard, "G-1")
        assert (guard.birth_date, guard.sex, guard.company_id) == (date(1990, 1, 1), "female", "acme")
        assert guard.id_number_masked == number[:6] + "********" + number[-4:]
        assert number.encode() not in guard.id_number_encrypted
        assert cipher.decrypt(guard.id_number_encrypted).decode() == number
        assert guard_by_id_number(s, cipher, number).guard_id == "G-1"
        assert guard_by_id_number(s, cipher, resident_id(sequence="125")) is None
        assert number not in str(guard_summary(s, "G-1"))
    with world.begin() as s:
        with pytest.raises(
            RegistryError, match=r"^resident ID number 440305\*{8}124\d is already registered to guard G-1$"
        ):
            registry.add_guard(s, "G-2", "Copy", cipher=cipher, id_number=number)
        with pytest.raises(RegistryError, match="G-3: resident ID number: check character mismatch"):
            registry.add_guard(
                s, "G-3", "Typo", cipher=cipher, id_number=number[:-1] + ("0" if number[-1] != "0" else "1")
            )
        with pytest.raises(RegistryError, match="the server key is needed"):
            registry.add_guard(s, "G-4", "No key", id_number=resident_id(sequence="126"))
        with pytest.raises(RegistryError, match="no company nobody"):
            registry.add_guard(s, "G-5", "X", company_id="nobody")


def test_certificate_status(world, cipher) -> None:
    today = date(2025, 6, 1)
    with world.begin() as s:
        registry.add_guard(s, "valid", "A", cipher=cipher, certificate=Certificate("GD-1", date(2020, 1, 1), today))
        registry.add_guard(s, "open", "B", cipher=cipher, certificate=Certificate("GD-2"))
        registry.add_guard(s, "expired", "C", cipher=cipher, certificate=Certificate("GD-3", None, date(2025, 5, 31)))
        registry.add_guard(s, "future", "D", cipher=cipher, certificate=Certificate("GD-4", date(2025, 6, 2)))
        registry.add_guard(s, "missing", "E")
        with pytest.raises(RegistryError, match=r"valid until 2019-01-01 is before issued on 2020-01-01"):
            registry.add_guard(
                s, "bad", "F", cipher=cipher, certificate=Certificate("GD-5", date(2020, 1, 1), date(2019, 1, 1))
            )
    with world() as s:
        statuses = {g: guard_certificate_status(s, g, today) for g in ("valid", "open", "expired", "future", "missing")}
        assert statuses == {
            "valid": "valid",
            "open": "valid",
            "expired": "expired",
            "future": "missing",
            "missing": "missing",
        }
        with pytest.raises(RegistryError, match="no guard ghost"):
            guard_certificate_status(s, "ghost", today)


def test_trajectory_records_the_posting_company_in_order(world) -> None:
    with world.begin() as s:
        registry.add_guard(s, "G-1", "张伟")  # no employer: postings take the site's company
        registry.assign(s, "G-1", "depot", datetime(2021, 1, 1), end=datetime(2022, 1, 1))
        registry.assign(s, "G-1", "riverside", datetime(2023, 5, 1), company_id="beta")  # beta's guard lent to acme
        registry.assign(s, "G-1", "riverside", datetime(2019, 3, 1), end=datetime(2020, 12, 31))
        with pytest.raises(RegistryError, match="the end must be after the start"):
            registry.assign(s, "G-1", "depot", datetime(2024, 1, 1), end=datetime(2024, 1, 1))
        s.get(Guard, "G-1").company_id = "acme"  # a later change of employer leaves the history alone
    with world() as s:
        path = [
            (e.company_id, e.company_name, e.site_id, e.start.year, e.end and e.end.year) for e in trajectory(s, "G-1")
        ]
        assert path == [
            ("acme", "平安保安服务有限公司", "riverside", 2019, 2020),
            ("beta", "Beta Security", "depot", 2021, 2022),
            ("beta", "Beta Security", "riverside", 2023, None),
        ]
        assert s.scalar(select(Assignment.company_id).where(Assignment.start == datetime(2021, 1, 1))) == "beta"
        summary = guard_summary(s, "G-1", date(2025, 1, 1))
        assert (
            summary["certificate_status"] == "missing"
            and summary["trajectory"][0]["start"] == "2019-03-01T00:00:00+00:00"
        )
