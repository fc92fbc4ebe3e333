"""The recorder's counting against a plain count of the same events, for logs hypothesis makes up.

The recorder keeps one counter per distinct call with its counts by hour, folds counters that end in one
shape (status codes with one outcome, values cut to the longest key kept) and is flushed at any point;
whatever the order of the events and wherever the flushes fall, the stored hourly rows and each
subject's counts and first and last times must be what counting the events one by one gives.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graph.auditlog import event
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as tables
from kubeguard.graph.recorder import ActivityRecorder
from kubeguard.store.database import open_engine

LONG_AGENT = "agent/" + "x" * (kinds.MAX_KEY + 40)  # two agents that differ only past the cut are one shape
OTHER_LONG_AGENT = LONG_AGENT + "y"

calls = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["alice", "bob"]),
        "ip": st.sampled_from(["203.0.113.5", "198.51.100.7"]),
        "agent": st.sampled_from(["kubectl/v1.31.0", LONG_AGENT, OTHER_LONG_AGENT]),
        "verb": st.sampled_from(["get", "list"]),
        "resource": st.sampled_from(["pods", "secrets"]),
        "namespace": st.sampled_from(["dev", ""]),
        "code": st.sampled_from([200, 201, 204, 403, 500]),  # three codes share the outcome "successful"
        "clock": st.tuples(st.integers(9, 12), st.integers(0, 59)).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}"),
        "day": st.sampled_from(["2026-11-20", "2026-11-21"]),
    }
)


def expected_rows(items: list[dict]) -> Counter:
    rows: Counter = Counter()
    for item in items:
        path = f"/api/v1/namespaces/{item['namespace']}/{item['resource']}" if item["namespace"] else (
            f"/api/v1/{item['resource']}")
        hour = queries.parse_time(f"{item['day']}T{item['clock'][:2]}:00:00Z")
        shape = ("lab", item["user"], item["ip"], item["agent"][: kinds.MAX_KEY], item["verb"], item["resource"],
                 item["namespace"], "", path[: kinds.MAX_KEY], kinds.outcome(item["code"]))
        rows[(hour, *shape)] += 1
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(calls, min_size=1, max_size=40), st.data())
def test_stored_rollups_equal_a_plain_count(items, data):
    cut = data.draw(st.integers(0, len(items)), label="flush after")
    with TemporaryDirectory() as scratch:
        engine = open_engine(f"sqlite:///{Path(scratch) / 'store.db'}")
        try:
            recorder = ActivityRecorder()
            for index, item in enumerate(items):
                if index == cut:
                    with engine.begin() as conn:
                        recorder.flush(conn)
                recorder.observe(event(item["clock"], day=item["day"], **{
                    name: item[name] for name in ("user", "ip", "agent", "verb", "resource", "namespace", "code")}))
            with engine.begin() as conn:
                recorder.flush(conn)
                columns = [tables.activity.c[name] for name in ("hour_ms", *tables._ACTIVITY_COLUMNS)]
                stored = Counter({tuple(row[:-1]): row[-1] for row in conn.execute(
                    select(*columns, tables.activity.c["count"]))})
                subjects = {row.key: row for row in conn.execute(
                    select(tables.entities).where(tables.entities.c.kind == kinds.SUBJECT))}
        finally:
            engine.dispose()
    assert stored == expected_rows(items)
    for user in {item["user"] for item in items}:
        times = [queries.parse_time(f"{item['day']}T{item['clock']}:00Z") for item in items if item["user"] == user]
        profile = subjects[user]
        assert (profile.events, profile.first_seen_ms, profile.last_seen_ms) == (len(times), min(times), max(times))
