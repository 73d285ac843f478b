"""Signed batches and what the reference receiver makes of them (signature, clock, items, duplicates)."""

from __future__ import annotations

import json
import time

import pytest

from protocol.reporting import (
    BATCH_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    batch_signature,
    body_bytes,
    envelope,
    signature_ok,
)
from server.reporting.receiver import ItemList, Store, check_batch, create_receiver

SECRET = "unit-test-secret-0123456789"
ITEMS = ItemList("440000", {"BAY_JBXX": ["RYBH", "XM"]})


def body(batch_id: str = "b-1", records=None, **overrides) -> dict:
    records = (
        records
        if records is not None
        else [{"key": "G-1", "op": "upsert", "version": 1, "items": {"RYBH": "G-1", "XM": "李娜"}}]
    )
    base = envelope(
        batch_id=batch_id,
        dataset="BAY_JBXX",
        province="440000",
        sender_id="S-1",
        company={"company_id": "C-01"},
        created_at="2026-04-01T00:00:00Z",
        records=records,
    )
    return {**base, **overrides}


def test_the_signed_bytes_are_canonical_and_every_part_is_covered():
    raw = body_bytes({"b": 1, "a": "李娜"})
    assert raw == '{"a":"李娜","b":1}'.encode()
    signature = batch_signature(SECRET, "1700000000", "b-1", raw)
    assert len(signature) == 64 and signature == batch_signature(SECRET, "1700000000", "b-1", raw)
    assert signature_ok(SECRET, "1700000000", "b-1", raw, signature.upper())
    assert not signature_ok(SECRET, "1700000001", "b-1", raw, signature)
    assert not signature_ok(SECRET, "1700000000", "b-2", raw, signature)
    assert not signature_ok(SECRET, "1700000000", "b-1", raw + b" ", signature)
    assert not signature_ok("another-secret-0123456789", "1700000000", "b-1", raw, signature)
    assert not signature_ok(SECRET, "1700000000", "b-1", raw, "ünicode")


def test_check_batch_names_every_problem():
    assert check_batch(body(), ITEMS) == []
    missing = body(records=[{"key": "G-1", "op": "upsert", "version": 1, "items": {"RYBH": "G-1", "XM": ""}}])
    assert check_batch(missing, ITEMS) == [{"item": "G-1.XM", "reason": "required item missing or empty"}]
    tombstone = body(records=[{"key": "G-1", "op": "delete", "version": 2, "items": {"RYBH": "G-1"}}])
    assert check_batch(tombstone, ITEMS) == []
    assert check_batch(body(province="110000"), ITEMS)[0]["item"] == "province"
    assert check_batch(body(dataset="OTHER"), ITEMS)[0]["reason"] == "unknown dataset 'OTHER'"
    assert check_batch(body(records=[]), ITEMS)[0]["item"] == "records"
    twice = body()["records"] * 2
    assert check_batch(body(records=twice), ITEMS) == [{"item": "G-1", "reason": "missing or repeated key"}]
    bad_op = body(records=[{"key": "G-1", "op": "merge", "version": 0, "items": {}}])
    assert "op must be one of" in check_batch(bad_op, ITEMS)[0]["reason"]
    assert check_batch([], ITEMS) == [{"item": "body", "reason": "not a JSON object"}]


@pytest.fixture
def client():
    return create_receiver(SECRET, ITEMS, Store(None), fail_first=1).test_client()


def post(client, data: dict, *, stamp: int | None = None, secret: str = SECRET, batch_id: str | None = None):
    raw = body_bytes(data)
    stamp_text = str(stamp if stamp is not None else int(time.time()))
    batch_id = batch_id or data["batch_id"]
    headers = {
        BATCH_HEADER: batch_id,
        TIMESTAMP_HEADER: stamp_text,
        SIGNATURE_HEADER: batch_signature(secret, stamp_text, batch_id, raw),
    }
    return client.post("/upload", data=raw, headers=headers, content_type="application/json")


def test_the_receiver_verifies_stores_once_and_answers_receipts(client):
    assert post(client, body()).status_code == 503  # told to fail the first upload
    first = post(client, body())
    assert first.status_code == 200
    receipt = first.get_json()
    assert receipt["batch_id"] == "b-1" and receipt["accepted"] == 1 and receipt["rejected"] == []
    again = post(client, body()).get_json()
    assert again["receipt_id"] == receipt["receipt_id"] and again["duplicate"] is True

    older = post(client, body("b-2")).get_json()  # the same version of G-1 again, in a new batch
    assert older["accepted"] == 0 and older["rejected"] == [{"item": "G-1", "reason": "version 1 already received"}]
    records = client.get("/records/BAY_JBXX").get_json()["records"]
    assert records["G-1"]["version"] == 1
    assert [b["batch_id"] for b in client.get("/batches").get_json()["batches"]] == ["b-1", "b-2"]


def test_the_receiver_refuses_forged_stale_or_mislabelled_uploads(client):
    post(client, body())  # uses up --fail-first
    assert post(client, body(), secret="not-the-shared-secret-000").status_code == 401
    assert post(client, body(), stamp=int(time.time()) - 3600).status_code == 401
    mislabelled = post(client, body(), batch_id="b-other")
    assert mislabelled.status_code == 400 and "differs" in mislabelled.get_json()["error"]
    refused = post(client, body("b-9", province="110000"))
    assert refused.status_code == 422
    answer = refused.get_json()
    assert answer["accepted"] == 0 and answer["rejected"][0]["item"] == "province"
    assert client.get("/batches").get_json()["batches"] == []  # a refused batch is not stored
    unsigned = client.post("/upload", data=json.dumps(body()), content_type="application/json")
    assert unsigned.status_code == 401
