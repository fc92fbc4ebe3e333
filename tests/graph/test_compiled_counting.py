"""The compiled counter (``kubeguard.graph._counting``) against the recorder's Python counting.

Both recorders observe the same events and flush into stores of their own; every table they write must
hold the same rows. The events are the lab's real log, the simulator's traffic with every attack, and logs
hypothesis makes up to reach the edges: times out of order and across hours, requests without an object,
paths with and without queries, execs and workload writes (which the compiled counter leaves to Python),
and events built by hand with values of other types than the decoder gives.

Skipped when the module was not built (no C compiler), unless ``KUBEGUARD_REQUIRE_COMPILED=1`` (CI).
"""

from __future__ import annotations

import gzip
import io
import os
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import msgspec
import pytest
from conftest import build_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from kubeguard.audit.decode import EventReader
from kubeguard.audit.event import AuditEvent, ObjectReference, UserInfo
from kubeguard.graph import recorder as recording
from kubeguard.graph.recorder import ActivityRecorder
from kubeguard.store.database import open_engine

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("kg_activity_shapes", "kg_activity", "kg_entities", "kg_edges", "kg_first_seen")

if recording._counting is None:
    if os.environ.get("KUBEGUARD_REQUIRE_COMPILED") == "1":
        raise RuntimeError("kubeguard.graph._counting was not built, and KUBEGUARD_REQUIRE_COMPILED=1")
    pytest.skip("kubeguard.graph._counting was not built (no C compiler)", allow_module_level=True)


def stored_rows(
    events: list[AuditEvent], *, compiled: bool, flush_every: int = 0, discard_at: int = 0
) -> dict[str, list[tuple]]:
    """Every row the recorder writes for ``events`` (flushed every ``flush_every`` events, and at the end;
    what it holds after event number ``discard_at`` is discarded, as after a batch that did not commit),
    and under ``"pending"`` what the recorder said it held after each event (which decides when it flushes)."""
    with TemporaryDirectory() as scratch:
        engine = open_engine(f"sqlite:///{Path(scratch) / 'store.db'}")
        recorder = ActivityRecorder(compiled=compiled)
        assert isinstance(recorder.observe, type(recorder._observe_in_python)) is not compiled
        pending = []
        for number, event in enumerate(events, 1):
            recorder.observe(event)
            pending.append((recorder.pending,))
            if flush_every and number % flush_every == 0:
                with engine.begin() as conn:
                    recorder.flush(conn)
            if number == discard_at:
                recorder.discard()
        with engine.begin() as conn:
            recorder.flush(conn)
        with engine.connect() as conn:
            rows = {table: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {table}")))) for table in TABLES}
        engine.dispose()
    rows["pending"] = pending
    return rows


def assert_same_rows(events: list[AuditEvent], flush_every: int = 0, discard_at: int = 0) -> dict[str, list[tuple]]:
    compiled = stored_rows(events, compiled=True, flush_every=flush_every, discard_at=discard_at)
    python = stored_rows(events, compiled=False, flush_every=flush_every, discard_at=discard_at)
    for table in (*TABLES, "pending"):
        assert compiled[table] == python[table], table
    return compiled


def decoded(lines: list[bytes]) -> list[AuditEvent]:
    stream = io.BytesIO(b"".join(lines))
    return [event for batch in EventReader().read_stream_batches(stream, source="test") for event in batch]


def test_the_lab_log_is_counted_alike_in_both():
    lines = gzip.decompress((ROOT / "examples" / "lab-audit.jsonl.gz").read_bytes()).splitlines(keepends=True)
    events = decoded(lines)
    rows = assert_same_rows(events + events, flush_every=500)  # the log twice: every counter seen again
    assert sum(count for _hour, _shape, count in rows["kg_activity"]) == 2 * len(events)


def test_simulated_traffic_with_every_attack_is_counted_alike_in_both():
    from kubeguard.sim import SimConfig, Simulator

    simulator = Simulator(SimConfig(seed=11, duration=timedelta(hours=8), learning=timedelta(hours=2), attacks=["all"]))
    lines = [msgspec.json.encode(document) + b"\n" for document in simulator.events()]
    events = decoded(lines)
    rows = assert_same_rows(events, flush_every=1700)
    assert len({hour for hour, _shape, _count in rows["kg_activity"]}) > 4  # the counters changed hours
    assert any(map(_is_fact, events))


def test_the_compiled_counter_leaves_only_new_counters_to_python_and_facts_to_their_derivation():
    lines = gzip.decompress((ROOT / "examples" / "lab-audit.jsonl.gz").read_bytes()).splitlines(keepends=True)
    events = decoded(lines)
    recorder = ActivityRecorder(compiled=True)
    handed: list[AuditEvent] = []
    derived: list[AuditEvent] = []
    # The compiled counter, made again with spies on the recorder's methods it calls.
    recorder._counting = recording._counting.Counter(
        recorder._calls,
        lambda event: (handed.append(event), recorder._observe_in_python(event)),
        recorder._change_hour,
        lambda event: (derived.append(event), recorder._observe_facts(event)),
    )
    recorder.observe = recorder._counting.count
    for event in events + events:
        recorder.observe(event)
    # Python sees the first event of each counter (the Python recorder shows them as it grows); the fact
    # derivation every other event with facts.
    python = ActivityRecorder(compiled=False)
    firsts, others = [], []
    for event in events + events:
        before = len(python._calls)
        python.observe(event)
        (firsts if len(python._calls) > before else others).append(event)
    assert [id(event) for event in handed] == [id(event) for event in firsts]
    assert [id(event) for event in derived] == [id(event) for event in others if _is_fact(event)]
    assert 0 < sum(map(_is_fact, events)) < len(events) // 4


def _is_fact(event: AuditEvent) -> bool:
    ref = event.objectRef
    if ref is None:
        return False
    if ref.subresource:
        return ref.subresource in recording._CONNECT_SUBRESOURCES
    return event.verb in recording._WRITE_VERBS and ref.resource in recording._FACT_RESOURCES


# -- made-up logs ---------------------------------------------------------------------------------------------

POD = {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "dev"},
       "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}

calls = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["alice", "bob", "system:serviceaccount:dev:builder"]),
        "ip": st.sampled_from(["203.0.113.5", "198.51.100.7", ""]),
        "agent": st.sampled_from(["kubectl/v1.31.0", "curl/8.5.0", ""]),
        "verb": st.sampled_from(["get", "list", "create", "patch", "delete"]),
        "ref": st.sampled_from([
            None,
            {"resource": "pods", "namespace": "dev", "name": "web-1"},
            {"resource": "pods", "namespace": "dev", "name": "web-1", "subresource": "exec"},
            {"resource": "pods", "namespace": "dev", "name": "web-1", "subresource": "log"},
            {"resource": "secrets", "namespace": "kube-system"},
            {"resource": "", "namespace": ""},
        ]),
        "path": st.sampled_from(["/api/v1/namespaces/dev/pods/web-1", "/healthz", "/apis", "/version?timeout=32s"]),
        "query": st.sampled_from(["", "?limit=500", "?watch=true&resourceVersion=7"]),
        "code": st.sampled_from([0, 101, 200, 201, 403, 500]),
        "stamp": st.tuples(st.sampled_from(["2026-11-20", "2026-11-21"]), st.integers(8, 11), st.integers(0, 59),
                           st.integers(0, 59), st.sampled_from([".000000Z", ".5Z", "Z", ".1234567890123456789012345Z"])),
        "stamp_field": st.sampled_from(["stageTimestamp", "requestReceivedTimestamp", "timestamp"]),
        # A time too short to name an hour (the day alone) is put away by the Python method.
        "short": st.sampled_from([False] * 9 + [True]),
        "body": st.booleans(),
    }
)


def made_up(item: dict) -> AuditEvent:
    day, hour, minute, second, fraction = item["stamp"]
    document = {
        "auditID": "made-up",
        "stage": "ResponseComplete",
        "verb": item["verb"],
        "requestURI": item["path"] + item["query"],
        "user": {"username": item["user"], "groups": ["system:authenticated"]},
        "sourceIPs": [item["ip"]] if item["ip"] else [],
        "userAgent": item["agent"],
        item["stamp_field"]: day if item["short"] else f"{day}T{hour:02d}:{minute:02d}:{second:02d}{fraction}",
    }
    if item["ref"] is not None:
        document["objectRef"] = item["ref"]
    if item["code"]:
        document["responseStatus"] = {"code": item["code"]}
    if item["body"]:
        document["requestObject"] = document["responseObject"] = POD
    return build_event(document, cluster="lab")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(calls, min_size=1, max_size=60), st.integers(0, 25), st.integers(0, 60))
def test_made_up_logs_are_counted_alike_in_both(items, flush_every, discard_at):
    assert_same_rows([made_up(item) for item in items], flush_every=flush_every, discard_at=discard_at)


def test_events_built_by_hand_with_other_types_go_to_python():
    """Values the decoder never gives (a tuple of addresses, a str subclass, a subclass of the event) are
    left to the Python counting, which counts them as it always has."""

    class Name(str):
        pass

    class Event(AuditEvent, kw_only=True):
        extra: str = ""

    base = dict(verb="get", requestURI="/api/v1/namespaces/dev/pods", userAgent="kubectl/v1.31.0",
                stageTimestamp="2026-11-20T10:00:00.000000Z", user=UserInfo(username="alice"), cluster="lab")
    events = [
        AuditEvent(**base, sourceIPs=("203.0.113.5",), objectRef=ObjectReference(resource="pods", namespace="dev")),
        AuditEvent(**{**base, "verb": Name("list")}, objectRef=ObjectReference(resource="pods")),
        Event(**base, extra="x", objectRef=ObjectReference(resource="pods", namespace="dev")),
        AuditEvent(**{**base, "stageTimestamp": "2026-11-20T10:00:00.000000Z\u00e9"}),
    ]
    assert_same_rows(events * 3)
