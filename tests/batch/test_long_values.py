"""Values longer than any column: the store keeps them cut instead of refusing the batch.

An audit log can name anything at any length (a username from an authenticator, a namespace or object in a
request for something made up, an image, a user agent, a forged source address). PostgreSQL refuses a value
longer than its ``varchar`` column, and a refused statement fails the batch's whole transaction, again and
again until the batch is marked failed: one odd request per batch would have blinded detection. The lab
log, rewritten with such values, must be detected on every store as on SQLite (which never enforces the
lengths), findings and activity included.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from sqlalchemy import func, select

from batch.batches import processor, stored
from kubeguard.graph import schema as graph_tables
from kubeguard.graph.recorder import attach_activity
from kubeguard.store.database import open_engine

LAB = Path(__file__).resolve().parents[1] / "data" / "lab-scenario" / "audit.jsonl.gz"


def _lab_events() -> list[dict]:
    return [orjson.loads(line) for line in gzip.decompress(LAB.read_bytes()).splitlines() if line.strip()]


def _lengthened(event: dict) -> dict:
    event["user"]["username"] = "u" * 1000
    event["userAgent"] = "a" * 2000
    event["sourceIPs"] = ["192.0.2." + "9" * 90]
    ref = event.get("objectRef") or {}
    if ref.get("namespace"):
        ref["namespace"] = "n" * 300
    for side in ("requestObject", "responseObject"):
        body = event.get(side)
        if isinstance(body, dict) and isinstance(body.get("spec"), dict):
            for container in body["spec"].get("containers") or []:
                container["image"] = "registry.example/" + "i" * 700
    return event


def _detect(url: str, events: list[dict]) -> tuple[list[str], int]:
    engine = open_engine(url)
    worker = processor(engine)
    attach_activity(worker)
    result = worker.process_batch("lab-1", "lab", b"\n".join(orjson.dumps(event) for event in events))
    assert result.processed
    types = sorted(finding["type"] for finding in stored(engine).values())
    with engine.connect() as conn:
        counted = conn.execute(select(func.sum(graph_tables.activity_counts.c["count"]))).scalar()
    engine.dispose()
    return types, counted


def test_a_batch_with_values_longer_than_every_column_is_detected_as_on_sqlite(db_url, tmp_path):
    events = [_lengthened(event) for event in _lab_events()]
    reference = _detect(f"sqlite:///{tmp_path}/reference.db", events)
    assert "PrivilegeEscalation:Kubernetes/PrivilegedContainer" in reference[0]
    assert _detect(db_url, events) == reference
