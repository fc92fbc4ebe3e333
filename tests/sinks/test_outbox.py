"""The outbox and a sink's worker, in process: bounds, partial failures, expiry, order, filters, options."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import msgspec
import pytest

from kubeguard.config import Settings
from kubeguard.findings.publish import Publisher, Route
from kubeguard.findings.sample import sample_finding
from kubeguard.findings.types import ALL_FINDING_TYPES
from kubeguard.sinks import outbox
from kubeguard.sinks.delivery import DeliveryError, Item, PartialFailure, PermanentFailure
from kubeguard.sinks.filters import SinkFilter
from kubeguard.sinks.health import SinkHealth
from kubeguard.sinks.options import AnySinkOptions, JsonlOptions, SinkOptions
from kubeguard.sinks.worker import SinkWorker
from kubeguard.store.database import open_engine

SETTINGS = Settings(account_id="111122223333", region="eu-west-1")


def findings(count: int) -> list[dict[str, Any]]:
    types = list(ALL_FINDING_TYPES)
    return [sample_finding(types[i % len(types)], SETTINGS) for i in range(count)]


class Scripted:
    """A destination that answers each delivery from a script of outcomes, and records what it got."""

    batch_size = 10

    def __init__(self, *outcomes: Exception | None) -> None:
        self.name = "scripted"
        self.outcomes = list(outcomes)
        self.delivered: list[str] = []
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def deliver(self, items: list[Item]) -> None:
        ids = [item.finding["id"] for item in items]
        with self.lock:
            self.calls.append(ids)
            outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, PartialFailure):
            self.delivered += [i for n, i in enumerate(ids) if n not in outcome.failed]
            raise outcome
        if outcome is not None:
            raise outcome
        self.delivered += ids

    def close(self) -> None:
        pass


def publisher_with(tmp_path, destination: Scripted, **options: Any) -> tuple[Publisher, SinkHealth]:
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    sink = JsonlOptions(path="unused", backoff_seconds=0.05, max_backoff_seconds=0.1, **options)
    health = SinkHealth(destination.name, "jsonl", "guardduty", sink.outbox_size)
    publisher = Publisher(engine)
    publisher.add(Route(SinkWorker(engine, destination, sink, health, link=publisher.link), SinkFilter(sink)))
    return publisher, health


def stage(publisher: Publisher, items: list[dict[str, Any]]) -> None:
    assert publisher.engine is not None
    with publisher.engine.begin() as conn:
        publisher.stage(conn, items)
    publisher.wake()


def wait(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_a_full_outbox_refuses_and_counts_what_does_not_fit(tmp_path, caplog):
    destination = Scripted(*[DeliveryError("HTTP 503")] * 1000)
    publisher, health = publisher_with(tmp_path, destination, outbox_size=3)
    caplog.set_level(logging.WARNING)
    stage(publisher, findings(5))
    assert health.dropped == {"outbox_full": 2}
    assert "outbox full" in caplog.text and "2 finding event(s) dropped" in caplog.text
    with publisher.engine.connect() as conn:
        assert outbox.depth(conn, "scripted") == 3


def test_partial_failures_deliver_the_rest_drop_the_refused_and_retry_the_others(tmp_path):
    batch = findings(4)
    destination = Scripted(PartialFailure({1: ("InvalidInput: bad", True), 2: ("Throttled", False)}))
    publisher, health = publisher_with(tmp_path, destination)
    stage(publisher, batch)
    publisher.start()
    ids = [f["id"] for f in batch]
    wait(lambda: len(destination.delivered) == 3)
    publisher.close()
    assert destination.delivered == [ids[0], ids[3], ids[2]]
    assert destination.calls == [ids, [ids[2]]]
    assert (health.delivered, health.retried, dict(health.dropped)) == (3, 1, {"refused": 1})
    assert "InvalidInput: bad" in health.last_error or "Throttled" in health.last_error


def test_a_refused_batch_is_dropped_with_its_reason(tmp_path, caplog):
    destination = Scripted(PermanentFailure("HTTP 400: invalid_payload"))
    publisher, health = publisher_with(tmp_path, destination)
    caplog.set_level(logging.WARNING)
    stage(publisher, findings(2))
    publisher.start()
    wait(lambda: health.dropped)
    publisher.close()
    assert dict(health.dropped) == {"refused": 2} and health.delivered == 0
    assert "dropped 2 event(s) (refused): HTTP 400: invalid_payload" in caplog.text


def test_events_past_max_age_expire_and_the_rest_wait_in_order(tmp_path):
    destination = Scripted(*[DeliveryError("down")] * 1000)
    publisher, health = publisher_with(tmp_path, destination, max_age_seconds=1)
    old = findings(2)
    stage(publisher, old)
    publisher.start()
    wait(lambda: health.retried >= 2)
    time.sleep(1.1)
    fresh = findings(1)
    stage(publisher, fresh)
    with destination.lock:
        destination.outcomes.clear()  # the destination is back
    wait(lambda: health.dropped.get("expired") == 2 and destination.delivered, timeout=5)
    publisher.close()
    assert destination.delivered == [fresh[0]["id"]]


def test_a_worker_stopped_with_a_backlog_leaves_it_in_the_store_for_the_next_start(tmp_path):
    destination = Scripted(*[DeliveryError("down")] * 1000)
    publisher, _health = publisher_with(tmp_path, destination)
    batch = findings(3)
    stage(publisher, batch)
    publisher.start()
    wait(lambda: destination.calls)
    publisher.close()
    later = Scripted()
    again, health = publisher_with(tmp_path, later)
    again.start()
    wait(lambda: len(later.delivered) == 3)
    again.close()
    assert later.delivered == [f["id"] for f in batch] and health.outbox_depth == 0


def test_filters_combine_severity_types_clusters_and_criteria():
    batch = findings(len(ALL_FINDING_TYPES))
    high = SinkFilter(JsonlOptions(path="x", min_severity="high"))
    assert {f["id"] for f in batch if high.wants(f)} == {f["id"] for f in batch if f["severity"] >= 7}
    typed = SinkFilter(JsonlOptions(path="x", types=["Discovery:*", "Execution:Kubernetes/ExecInKubeSystemPod"]))
    assert {f["type"] for f in batch if typed.wants(f)} == {
        t for t in ALL_FINDING_TYPES if t.startswith("Discovery:") or t == "Execution:Kubernetes/ExecInKubeSystemPod"}
    assert not any(SinkFilter(JsonlOptions(path="x", clusters=["prod"])).wants(f) for f in batch)
    criteria = SinkFilter(JsonlOptions(path="x", criteria={"type": {"matches": ["*Tor*"]}, "severity": {"gte": 5}}))
    assert {f["type"] for f in batch if criteria.wants(f)} == {
        f["type"] for f in batch if "Tor" in f["type"] and f["severity"] >= 5}
    archived = batch[0]
    assert not high.wants(archived, archived_now=True)
    assert SinkFilter(JsonlOptions(path="x", send_archived=True)).wants(archived, archived_now=True)


def convert(sink: dict[str, Any]) -> SinkOptions:
    return msgspec.convert([sink], list[AnySinkOptions])[0]


def test_sink_options_refuse_what_could_only_fail(monkeypatch):
    with pytest.raises(msgspec.ValidationError, match="unknown field `colour`"):
        convert({"type": "slack", "url": "https://hooks.slack.com/services/T/B/X", "colour": "red"})
    with pytest.raises(msgspec.ValidationError, match="needs a routing_key"):
        convert({"type": "pagerduty"})
    with pytest.raises(msgspec.ValidationError, match="unknown format"):
        convert({"type": "sqs", "queue_url": "https://sqs/q", "format": "xml"})
    with pytest.raises(msgspec.ValidationError, match="KG_MISSING is not set"):
        convert({"type": "splunk", "url": "https://splunk:8088", "token": "env:KG_MISSING"})
    with pytest.raises(msgspec.ValidationError, match="unknown operator"):
        convert({"type": "stdout", "criteria": {"severity": {"between": 3}}})
    monkeypatch.setenv("KG_HEC", "s3cret")
    assert convert({"type": "splunk", "url": "https://splunk:8088", "token": "env:KG_HEC"}).token == "s3cret"


def test_a_finding_the_sink_cannot_render_is_dropped_alone_and_does_not_block_the_rest(tmp_path):
    class Picky(Scripted):
        def deliver(self, items: list[Item]) -> None:
            for item in items:
                item.finding["service"]["count"] + 0  # a malformed finding fails here, like a renderer would
            super().deliver(items)

    destination = Picky()
    publisher, health = publisher_with(tmp_path, destination)
    batch = findings(3)
    batch[1]["service"]["count"] = None
    stage(publisher, batch)
    publisher.start()
    wait(lambda: len(destination.delivered) == 2)
    publisher.close()
    assert destination.delivered == [batch[0]["id"], batch[2]["id"]]
    assert dict(health.dropped) == {"unrenderable": 1} and "TypeError" in health.last_error


def test_two_services_on_one_postgresql_store_deliver_each_event_once_and_in_order(tmp_path):
    from store.databases import database_url

    with database_url("postgresql", tmp_path) as url:
        engine = open_engine(url)
        shared = Scripted()
        replicas = []
        for _ in range(2):
            sink = JsonlOptions(path="unused", name="shared", backoff_seconds=0.05, max_backoff_seconds=0.1)
            health = SinkHealth("shared", "jsonl", "guardduty", sink.outbox_size)
            replica = Publisher(engine)
            replica.add(Route(SinkWorker(engine, shared, sink, health, link=replica.link), SinkFilter(sink)))
            replicas.append((replica, health))
        shared.batch_size = 1  # many small steps, so the two replicas contend for every one
        batch = findings(40)
        for replica, _ in replicas:
            replica.start()
        stage(replicas[0][0], batch)
        replicas[1][0].wake()
        wait(lambda: len(shared.delivered) >= len(batch), timeout=20)
        time.sleep(0.3)  # a duplicate would show up now
        for replica, _ in replicas:
            replica.close()
        engine.dispose()
        assert shared.delivered == [f["id"] for f in batch]
        assert sum(health.delivered for _, health in replicas) == len(batch)
