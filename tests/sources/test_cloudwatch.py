"""The CloudWatch Logs source against moto in server mode, through a proxy that throttles and pages emptily.

Each test lays events the way EKS does (two ``kube-apiserver-audit-*`` streams and a plain
``kube-apiserver-*`` stream in ``/aws/eks/<cluster>/cluster``) and checks exactly which events reach the
spool: every audit event once, nothing else, whatever the timing.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from kubeguard.sources.cloudwatch import CloudWatchSource, read_range
from kubeguard.sources.pacing import RateBudget
from kubeguard.sources.spec import parse_source
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store.spool import Spool
from sources.spooled import spooled_keys


def _event(audit_id: str, verb: str = "get", stage: str = "ResponseComplete") -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": audit_id,
            "stage": stage,
            "requestURI": "/api/v1/namespaces/default/pods",
            "verb": verb,
            "user": {"username": "alice"},
            "sourceIPs": ["10.0.0.7"],
            "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
        }
    )


@pytest.fixture
def engine(store_engine):
    return store_engine


def _source(engine, log_group, *, since_ms: int, overlap: str = "5m") -> CloudWatchSource:
    spec = parse_source(f"cloudwatch:{log_group.name},overlap={overlap}")
    writer = SpoolWriter(engine, Spool(engine))
    return CloudWatchSource(spec, writer, engine, RateBudget(rate=50), since_ms=since_ms)


def _catch_up(source: CloudWatchSource) -> None:
    source.resume()
    for _ in range(50):
        if source.sweep_once():
            return
    raise AssertionError("the source never caught up")


def test_backfill_reads_both_audit_streams_once_and_counts_everything_else(aws_env, engine, log_group, lab_lines):
    now = int(time.time() * 1000)
    base = now - 50 * 60 * 1000  # 50 minutes of history: several backfill slices
    stamps = [base + i * 2000 for i in range(len(lab_lines))]
    log_group.put("kube-apiserver-audit-aaaa", lab_lines[0::2], stamps[0::2])
    log_group.put("kube-apiserver-audit-bbbb", lab_lines[1::2], stamps[1::2])
    log_group.put("kube-apiserver-cccc", ["I1130 14:00:00.000 plain api server log"] * 3, [base + 1, base + 2, base + 3])
    log_group.put(
        "kube-apiserver-audit-aaaa",
        ['{"kind":"Event","auditID":"big","requestObject":{"spec": [Truncated...]', "E1130 not json at all"],
        [base + 5, base + 6],
    )

    source = _source(engine, log_group, since_ms=now - 3600 * 1000)
    _catch_up(source)

    expected = [(json.loads(line)["auditID"], json.loads(line)["stage"]) for line in lab_lines]
    spooled = spooled_keys(engine)
    assert sorted(spooled) == sorted(expected)
    health = source.health.snapshot()
    assert health["eventsRead"] == len(lab_lines)
    assert health["rejects"] == {"not_audit_stream": 3, "truncated": 1, "not_json": 1}
    assert health["cluster"] == log_group.name.split("/")[3]
    assert health["lagSeconds"] is not None and health["lagSeconds"] < 60


def test_shared_millisecond_and_late_events_across_polls_throttled_and_paged_emptily(
    aws_env, engine, log_group, proxy
):
    now = int(time.time() * 1000)
    tick = now - 10_000
    log_group.put("kube-apiserver-audit-a", [_event("a1"), _event("a2")], [tick, tick])
    source = _source(engine, log_group, since_ms=now - 600_000, overlap="2m")
    _catch_up(source)
    assert sorted(spooled_keys(engine)) == [("a1", "ResponseComplete"), ("a2", "ResponseComplete")]

    # After the poll: more events in the very millisecond last read, in both streams, and one late event
    # stamped a minute before it; the service throttles three calls and pads every page with an empty one.
    log_group.put("kube-apiserver-audit-a", [_event("a3")], [tick])
    log_group.put("kube-apiserver-audit-b", [_event("b1"), _event("late")], [tick, tick - 60_000])
    proxy.throttle_next = 3
    proxy.empty_pages = True
    time.sleep(0.01)
    source.sweep_once()

    keys = sorted(key for key, _stage in spooled_keys(engine))
    assert keys == ["a1", "a2", "a3", "b1", "late"]
    health = source.health.snapshot()
    assert health["throttles"] == 3 and "ThrottlingException" in health["lastError"]
    assert proxy.empty_served > 0
    assert health["duplicatesDropped"] >= 2  # a1 and a2 came back in the overlap and were dropped

    # A restart (a new reader over the same store) re-reads the overlap and adds nothing.
    restarted = _source(engine, log_group, since_ms=0, overlap="2m")
    _catch_up(restarted)
    assert sorted(key for key, _stage in spooled_keys(engine)) == keys
    assert restarted.health.snapshot()["duplicatesDropped"] == 5


def test_same_event_under_another_event_id_is_read_once(aws_env, engine, log_group):
    now = int(time.time() * 1000)
    log_group.put("kube-apiserver-audit-a", [_event("dup")], [now - 5000])
    log_group.put("kube-apiserver-audit-b", [_event("dup")], [now - 4000])
    source = _source(engine, log_group, since_ms=now - 60_000)
    _catch_up(source)
    assert spooled_keys(engine) == [("dup", "ResponseComplete")]
    assert source.health.snapshot()["duplicatesDropped"] == 1


def test_errors_never_stop_the_source(aws_env, engine, log_group, proxy):
    """A long throttling storm: the source keeps retrying with backoff, then reads everything."""
    now = int(time.time() * 1000)
    log_group.put("kube-apiserver-audit-a", [_event("x1"), _event("x2")], [now - 3000, now - 2000])
    source = _source(engine, log_group, since_ms=now - 60_000)
    source.reader.backoff.initial = 0.01
    source.reader.backoff.maximum = 0.05
    proxy.throttle_next = 12
    source.start()
    try:
        deadline = time.monotonic() + 20
        while len(spooled_keys(engine)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        source.stop()
    assert sorted(key for key, _ in spooled_keys(engine)) == ["x1", "x2"]
    assert source.health.snapshot()["throttles"] == 12


def test_scan_reads_a_closed_interval(aws_env, log_group):
    now = int(time.time() * 1000)
    log_group.put(
        "kube-apiserver-audit-a",
        [_event("before"), _event("inside1"), _event("inside2"), _event("after")],
        [now - 40_000, now - 30_000, now - 20_000, now - 10_000],
    )
    spec = parse_source(f"cloudwatch:{log_group.name}")
    events = list(read_range(spec, now - 35_000, now - 15_000, budget=RateBudget(rate=50), stop=threading.Event()))
    assert [event.auditID for event in events] == ["inside1", "inside2"]
    assert {event.cluster for event in events} == {spec.cluster}
