"""Reference receiver: what a provincial system must do with our batches, small enough to read in one sitting.

It checks the timestamp and signature, that the batch names this province, and that every record carries
the data items the province's list requires; it stores an accepted batch once (a repeated batch id gets
the first receipt back), keeps the newest version of each record, and answers a receipt. For tests it can
answer 503 to the first N batches, or store the first N and hold the answer back (a lost receipt).
"""

from __future__ import annotations

import json
import os
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from protocol.reporting import (
    BATCH_HEADER,
    MAX_CLOCK_SKEW_S,
    OPS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    receipt,
    signature_ok,
)
from server.config import ConfigError
from server.provinces import normalise_province

MAX_BODY = 20 * 1024 * 1024


@dataclass(frozen=True)
class ItemList:
    """The province's data-item list: the items each dataset requires, and the province itself."""

    province: str | None
    required: dict[str, list[str]]


def load_items(path: Path | None) -> ItemList:
    """From a TOML file (``province = ...``, ``[datasets.NAME] required = [...]``); default: the example list."""
    try:
        text = (
            path.read_text("utf-8")
            if path
            else resources.files("server.reporting").joinpath("example_items.toml").read_text("utf-8")
        )
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the item list {path}: {exc}") from None
    datasets = data.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        raise ConfigError(f"item list {path or 'example'}: needs [datasets.NAME] tables with required = [...]")
    required = {}
    for name, spec in datasets.items():
        items = spec.get("required") if isinstance(spec, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"item list {path or 'example'}: datasets.{name}.required must be a list of names")
        required[name] = items
    province = data.get("province")
    return ItemList(normalise_province(province) if province else None, required)


class Store:
    """Accepted batches, one JSON file each (written atomically), and the newest version of every record."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.batches: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.lock = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
                saved = json.loads(path.read_text("utf-8"))
                self._apply(saved)

    def _apply(self, saved: dict[str, Any]) -> None:
        body = saved["body"]
        self.batches[body["batch_id"]] = saved
        taken = {r["key"] for r in saved["taken"]}
        for record in body["records"]:
            if record["key"] in taken:
                self.records.setdefault(body["dataset"], {})[record["key"]] = record

    def newest_version(self, dataset: str, key: str) -> int:
        return self.records.get(dataset, {}).get(key, {}).get("version", 0)

    def save(self, body: dict[str, Any], answer: dict[str, Any], taken: list[dict[str, Any]]) -> None:
        saved = {"body": body, "receipt": answer, "taken": [{"key": r["key"]} for r in taken], "at": time.time()}
        if self.folder is not None:
            final = self.folder / f"{body['batch_id']}.json"
            temp = final.with_suffix(".tmp")
            with open(temp, "w", encoding="utf-8") as fh:
                json.dump(saved, fh, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, final)
        self._apply(saved)


def check_batch(body: Any, items: ItemList) -> list[dict[str, str]]:
    """Everything wrong with a batch, as receipt entries; empty means it can be stored."""
    if not isinstance(body, dict):
        return [{"item": "body", "reason": "not a JSON object"}]
    problems = []
    for name in ("batch_id", "dataset", "province", "sender_id", "records"):
        if name not in body:
            problems.append({"item": name, "reason": "missing"})
    if problems:
        return problems
    if items.province is not None and normalise_province(str(body["province"])) != items.province:
        return [{"item": "province", "reason": f"this system receives province {items.province}"}]
    required = items.required.get(body["dataset"])
    if required is None:
        return [{"item": "dataset", "reason": f"unknown dataset {body['dataset']!r}"}]
    if not isinstance(body["records"], list) or not body["records"]:
        return [{"item": "records", "reason": "must be a non-empty list"}]
    seen: set[str] = set()
    for n, record in enumerate(body["records"]):
        key = record.get("key") if isinstance(record, dict) else None
        where = f"records[{n}]" if not isinstance(key, str) else key
        if not isinstance(key, str) or not key or key in seen:
            problems.append({"item": where, "reason": "missing or repeated key"})
            continue
        seen.add(key)
        if record.get("op") not in OPS or not isinstance(record.get("version"), int) or record["version"] < 1:
            problems.append({"item": key, "reason": f"op must be one of {', '.join(OPS)} and version a whole number"})
            continue
        given = record.get("items")
        if not isinstance(given, dict):
            problems.append({"item": key, "reason": "items must be an object"})
            continue
        if record["op"] == "upsert":
            for name in required:
                if given.get(name) in (None, ""):
                    problems.append({"item": f"{key}.{name}", "reason": "required item missing or empty"})
    return problems


def create_receiver(
    secret: str,
    items: ItemList,
    store: Store,
    *,
    fail_first: int = 0,
    hang_first: int = 0,
    hang_s: float = 60.0,
    max_skew_s: int = MAX_CLOCK_SKEW_S,
) -> Flask:
    app = Flask("guardpost-receiver")
    app.json.sort_keys = False
    counters = {"fail": fail_first, "hang": hang_first}
    counter_lock = threading.Lock()

    def refuse(status: int, reason: str, batch_id: str | None = None, rejected=None) -> tuple[Response, int]:
        answer = receipt(str(uuid.uuid4()), batch_id or "", 0, rejected or [], error=reason)
        return jsonify(answer), status

    @app.post("/", defaults={"_path": ""})
    @app.post("/<path:_path>")
    def upload(_path: str):
        with counter_lock:
            failing = counters["fail"] > 0
            counters["fail"] -= 1 if failing else 0
        if failing:
            return refuse(503, "unavailable (told to fail with --fail-first)")
        raw = request.get_data(cache=False)
        batch_id = request.headers.get(BATCH_HEADER, "")
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        if not (batch_id and stamp.isdigit() and request.headers.get(SIGNATURE_HEADER)):
            return refuse(401, f"send {BATCH_HEADER}, {TIMESTAMP_HEADER} (unix seconds) and {SIGNATURE_HEADER}")
        if abs(time.time() - int(stamp)) > max_skew_s:
            return refuse(401, f"timestamp more than {max_skew_s} s from this system's clock", batch_id)
        if not signature_ok(secret, stamp, batch_id, raw, request.headers[SIGNATURE_HEADER]):
            return refuse(401, "bad signature", batch_id)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return refuse(400, "body is not UTF-8 JSON", batch_id)
        if not isinstance(body, dict) or body.get("batch_id") != batch_id:
            return refuse(400, f"{BATCH_HEADER} differs from the body's batch_id", batch_id)
        with store.lock:
            if batch_id in store.batches:
                return jsonify({**store.batches[batch_id]["receipt"], "duplicate": True}), 200
            problems = check_batch(body, items)
            if problems:
                return refuse(422, "batch refused; nothing stored", batch_id, problems)
            taken, stale = [], []
            for record in body["records"]:
                newest = store.newest_version(body["dataset"], record["key"])
                if record["version"] > newest:
                    taken.append(record)
                else:
                    stale.append({"item": record["key"], "reason": f"version {newest} already received"})
            answer = receipt(str(uuid.uuid4()), batch_id, len(taken), stale)
            store.save(body, answer, taken)
        with counter_lock:
            hanging = counters["hang"] > 0
            counters["hang"] -= 1 if hanging else 0
        if hanging:
            time.sleep(hang_s)  # stored, but the sender never hears so: it must send again, and gets this receipt
        return jsonify(answer), 200

    @app.get("/batches")
    def batches():
        with store.lock:
            rows = [
                {"batch_id": bid, "dataset": s["body"]["dataset"], "receipt": s["receipt"]}
                for bid, s in store.batches.items()
            ]
        return jsonify(batches=rows)

    @app.get("/records/<dataset>")
    def records(dataset: str):
        with store.lock:
            return jsonify(records=dict(store.records.get(dataset, {})))

    @app.get("/health")
    def health():
        return {"status": "ok"}

    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    return app


def read_secret_file(path: Path) -> str:
    try:
        value = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the secret file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(value) < 16:
        raise ConfigError(f"the secret in {path} is shorter than 16 characters")
    return value
