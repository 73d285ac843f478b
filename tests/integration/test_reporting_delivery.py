"""Provincial reporting against the real reference receiver over HTTP on localhost, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from guardpost.broker import free_port
from server.db import make_engine, make_sessionmaker
from server.duty.service import correct
from server.duty.tables import RosterRow
from server.models import Event, Guard
from server.reporting import outbox
from server.reporting.config import load_config, load_secret
from server.reporting.runner import Reporter
from server.reporting.tables import ReportBatch, ReportLedger
from tests.support.reporting import ID_NUMBERS, Clock, Registry, receiver, write_config


@pytest.fixture
def world(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    yield Registry(sessions)
    engine.dispose()


def reporter(world: Registry, config_path, clock: Clock | None = None) -> Reporter:
    config = load_config(config_path)
    return Reporter(world.sessions, config, load_secret(config), world.cipher, clock=clock or Clock(), rand=lambda: 0.0)


def batches(world: Registry, **where) -> list[ReportBatch]:
    with world.sessions() as s:
        query = select(ReportBatch).order_by(ReportBatch.id)
        for name, value in where.items():
            query = query.where(getattr(ReportBatch, name) == value)
        return list(s.scalars(query))


def test_every_record_of_the_province_is_delivered_once_with_a_receipt_per_batch(world, tmp_path):
    with receiver(tmp_path / "store") as (url, store):
        rep = reporter(world, write_config(tmp_path, url))
        done = rep.run_once()
        built = {b.kind: b for b in done.built}
        # Two Guangdong companies: their guards, postings, 3 days of duty and the absences found; not Beijing's.
        assert {k: (b.scanned, b.new) for k, b in built.items()} == {
            "guards": (2, 2),
            "assignments": (2, 2),
            "duty_logs": (6, 6),
            "findings": (6, 6),
        }
        sent = batches(world)
        assert len(sent) == 8 and {b.company_id for b in sent} == {"C-01", "C-02"}
        assert all(b.status == "accepted" and b.attempts == 1 and b.last_error is None for b in sent)
        for batch in sent:  # the receipt the receiver gave is the one stored with the batch
            assert batch.receipt == store.batches[batch.batch_id]["receipt"]
            assert batch.receipt_id == batch.receipt["receipt_id"] and batch.receipt["accepted"] == batch.record_count
        guards = store.records["BAY_JBXX"]
        assert set(guards) == {"G-1", "G-2"}
        # The police system gets the full ID number (the mapping asks for it); the stored copy is masked.
        assert guards["G-1"]["items"]["ZJHM"] == ID_NUMBERS["G-1"]
        assert guards["G-1"]["items"]["XB"] == "1" and guards["G-1"]["items"]["QYMC"] == "平安保安服务有限公司"
        assert set(store.records["BAY_GZRZ"]) == {
            f"{g}|{s}|{sh}|{d}"
            for g, s, sh in (("G-1", "site-a", "a-day"), ("G-2", "site-b", "b-day"))
            for d in world.days
        }
        assert all(r["items"]["ZJHM"].count("*") == 8 for r in store.records["BAY_GZRZ"].values())
        with world.sessions() as s:
            stored = " ".join(str((b.payload, b.records, b.receipt)) for b in s.scalars(select(ReportBatch)))
        assert not any(number in stored for number in ID_NUMBERS.values())
        assert "440106********1235" in stored

        again = rep.run_once()  # nothing changed: nothing is batched or sent again
        assert [b.batch_ids for b in again.built] == [[], [], [], []] and again.sent == []
        assert len(store.batches) == 8


def test_a_receiver_that_is_down_gets_the_batches_once_it_is_up(world, tmp_path):
    port = free_port()
    clock = Clock()
    rep = reporter(world, write_config(tmp_path, f"http://127.0.0.1:{port}/upload"), clock)
    first = rep.run_once()
    assert [(s.status, s.retryable) for s in first.sent] == [("pending", True)]
    assert "cannot reach" in first.sent[0].detail
    pending = batches(world)
    assert [b.attempts for b in pending] == [1] + [0] * 7  # one attempt spent; the rest wait for the endpoint
    assert pending[0].next_attempt_at == clock.now + timedelta(seconds=1)
    with receiver(tmp_path / "store", port=port) as (_url, store):
        assert rep.send_due() == []  # not due yet: backoff is respected
        clock.advance(1.5)
        sent = rep.send_due()
        assert [s.status for s in sent] == ["accepted"] * 8
        assert sorted(store.batches) == sorted(b.batch_id for b in batches(world))
        assert [b.attempts for b in batches(world)] == [2] + [1] * 7
        assert rep.run_once().sent == []


def test_a_receiver_failing_past_the_last_attempt_leaves_a_failed_batch_that_can_be_resent(world, tmp_path):
    clock = Clock()
    with receiver(tmp_path / "store", fail_first=3) as (url, store):
        rep = reporter(world, write_config(tmp_path, url), clock)
        for _ in range(3):
            rep.run_once()
            clock.advance(20)
        failed = batches(world, status="failed")
        assert len(failed) == 1 and failed[0].attempts == 3
        assert (
            failed[0].last_error.startswith("HTTP 503: unavailable")
            and "gave up after 3 attempt(s)" in failed[0].last_error
        )
        assert failed[0].batch_id not in store.batches
        assert rep.run_once().sent and batches(world, status="failed")  # a failed batch is not retried by itself
        with world.sessions() as s:
            outbox.resend(s, outbox.find(s, failed[0].batch_id), "ops", clock())
            s.commit()
        rep.send_due()
        resent = batches(world, id=failed[0].id)[0]
        assert (resent.status, resent.attempts, resent.resent_by) == ("accepted", 1, "ops")
        assert resent.batch_id in store.batches and len(store.batches) == 8


def test_a_refused_batch_stays_visible_and_goes_out_after_the_mapping_is_fixed(world, tmp_path):
    with receiver(tmp_path / "store") as (url, store):
        path = write_config(tmp_path, url)
        broken = path.read_text("utf-8").replace('XM = "name"', 'XINGMING = "name"')
        path.write_text(broken, "utf-8")
        rep = reporter(world, path)
        rep.run_once()
        refused = batches(world, status="refused")
        assert [b.kind for b in refused] == ["guards", "guards"]
        assert refused[0].last_error == "HTTP 422: G-1.XM: required item missing or empty"
        assert refused[0].receipt["rejected"] == [{"item": "G-1.XM", "reason": "required item missing or empty"}]
        assert not any(b.batch_id in store.batches for b in refused)
        assert rep.run_once().sent == []  # no automatic retry of a refusal
        assert [b.attempts for b in batches(world, status="refused")] == [1, 1]

        path.write_text(broken.replace('XINGMING = "name"', 'XM = "name"'), "utf-8")
        rep.configure(load_config(path), rep.secret, world.cipher)
        with world.sessions() as s:
            for batch in refused:
                outbox.resend(s, s.get(ReportBatch, batch.id), "admin", rep.clock())
            s.commit()
        assert [s.status for s in rep.send_due()] == ["accepted", "accepted"]
        assert store.records["BAY_JBXX"]["G-2"]["items"]["XM"] == "Guard G-2"


def test_a_value_the_mapping_cannot_express_refuses_the_batch_before_sending(world, tmp_path):
    with receiver(tmp_path / "store") as (url, store):
        path = write_config(tmp_path, url)
        path.write_text(path.read_text("utf-8").replace('absent = "05", ', ""), "utf-8")
        rep = reporter(world, path)
        rep.run_once()
        refused = batches(world, status="refused")
        assert {b.kind for b in refused} == {"duty_logs"} and all(b.attempts == 0 for b in refused)
        assert refused[0].last_error == (
            "not sent: duty_logs item KQZT (from status): value 'absent' is not in the map; add it or set a default"
        )
        assert "BAY_GZRZ" not in store.records


def late_check_in(world: Registry, guard_id: str, site_id: str, day) -> None:
    at = datetime.combine(day, time(8, 2), tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC).replace(tzinfo=None)
    with world.sessions.begin() as s:
        s.add(
            Event(
                event_id=str(uuid.uuid4()),
                device_id="gate-b",
                site_id=site_id,
                seq=1,
                type="check_in",
                method="face",
                guard_id=guard_id,
                captured_at=at,
                clock_synced=True,
                payload={},
            )
        )


def test_corrected_and_recomputed_duty_logs_are_reported_again_and_nothing_else_is(world, tmp_path):
    with receiver(tmp_path / "store") as (url, store):
        rep = reporter(world, write_config(tmp_path, url))
        rep.run_once()
        world.recompute()  # rows deleted and rebuilt with new ids and times, but the same content
        assert [b.batch_ids for b in rep.run_once().built] == [[], [], [], []]

        day = world.days[0]
        with world.sessions.begin() as s:
            correct(
                s,
                guard_id="G-1",
                shift_id="a-day",
                day=day,
                field="status",
                value="present",
                reason="reader fault; confirmed by CCTV",
                by="supervisor-li",
            )
        late_check_in(world, "G-2", "site-b", day)  # arrives from a terminal's backlog
        world.recompute()
        done = rep.run_once()
        duty = next(b for b in done.built if b.kind == "duty_logs")
        assert (duty.new, duty.changed, duty.deleted) == (0, 2, 0)
        records = store.records["BAY_GZRZ"]
        corrected = records[f"G-1|site-a|a-day|{day}"]
        assert corrected["version"] == 2 and corrected["items"]["KQZT"] == "01" and corrected["items"]["SFXZ"] == "1"
        recomputed = records[f"G-2|site-b|b-day|{day}"]
        assert recomputed["version"] == 2 and recomputed["items"]["KQZT"] != "05"
        assert recomputed["items"]["SBSJ"] == f"{day:%Y%m%d}080200"
        assert all(r["version"] == 1 for k, r in records.items() if k.split("|")[3] != str(day))
        # The absence the late check-in undid is reported again, as resolved; what it raised is reported as new.
        findings = next(b for b in done.built if b.kind == "findings")
        assert (findings.new, findings.changed) == (1, 1)
        resolved = [r for r in store.records["BAY_YCXX"].values() if r["items"]["CZSJ"]]
        assert len(resolved) == 1 and resolved[0]["version"] == 2 and resolved[0]["items"]["RYBH"] == "G-2"


def test_a_duty_record_that_disappears_is_withdrawn(world, tmp_path):
    with receiver(tmp_path / "store") as (url, store):
        rep = reporter(world, write_config(tmp_path, url))
        rep.run_once()
        day = world.days[1]
        with world.sessions.begin() as s:  # taken off the roster: the recompute drops the record
            s.execute(delete(RosterRow).where(RosterRow.guard_id == "G-1", RosterRow.date == day))
        world.recompute()
        duty = next(b for b in rep.run_once().built if b.kind == "duty_logs")
        assert duty.deleted == 1
        gone = store.records["BAY_GZRZ"][f"G-1|site-a|a-day|{day}"]
        assert gone["op"] == "delete" and gone["version"] == 2
        assert gone["items"] == {
            "RYBH": "G-1",
            "ZJHM": "440106********1235",
            "FWDWBH": "site-a",
            "BCBH": "a-day",
            "RQ": f"{day:%Y%m%d}",
            "SJLY": "GUARDPOST",
        }
        tombstone_batch = batches(world, kind="duty_logs")[-1]
        assert tombstone_batch.company_id == "C-01" and tombstone_batch.status == "accepted"


def test_a_refused_batch_whose_records_went_out_again_is_superseded_on_resend(world, tmp_path):
    with receiver(tmp_path / "store") as (url, store):
        path = write_config(tmp_path, url)
        good = path.read_text("utf-8")
        path.write_text(good.replace('XM = "name"', 'XINGMING = "name"'), "utf-8")
        rep = reporter(world, path)
        rep.run_once()
        refused = batches(world, status="refused", company_id="C-01")[0]
        with world.sessions.begin() as s:  # G-1 changes: a new batch carries the new version
            s.get(Guard, "G-1").name = "李娜"
        path.write_text(good, "utf-8")
        rep.configure(load_config(path), rep.secret, world.cipher)
        rep.run_once()
        assert store.records["BAY_JBXX"]["G-1"]["version"] == 2
        with world.sessions() as s:
            outbox.resend(s, s.get(ReportBatch, refused.id), "admin", rep.clock())
            s.commit()
        sent = rep.send_due()
        assert [(s.batch_pk, s.status) for s in sent] == [(refused.id, "superseded")]
        assert store.records["BAY_JBXX"]["G-1"]["items"]["XM"] == "李娜"  # never overwritten by the old version


def test_two_reporters_building_at_once_never_batch_a_record_twice(world, tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9/upload"))
    real_snapshot = outbox.snapshot
    other_done = threading.Event()

    def snapshot_then_let_the_other_build(*args, **kwargs):
        records = real_snapshot(*args, **kwargs)
        if not other_done.is_set():
            other_done.set()
            with world.sessions() as other:  # a second reporter completes its build while this one reads
                assert outbox.build(other, config, "guards", Clock()()).batch_ids
        return records

    monkeypatch.setattr(outbox, "snapshot", snapshot_then_let_the_other_build)
    with world.sessions() as s:
        first = outbox.build(s, config, "guards", Clock()())
    assert first.conflict and first.batch_ids == []
    with world.sessions() as s:
        keys = list(s.scalars(select(ReportLedger.record_key).where(ReportLedger.kind == "guards")))
        assert sorted(keys) == ["G-1", "G-2"]
        assert sum(b.record_count for b in s.scalars(select(ReportBatch))) == 2
