"""An entity profile's activity (series, breakdown, drill-down) against a plain count of a random log.

The log is a few hundred calls drawn at random over two days, two clusters, a handful of subjects,
addresses, user agents, calls, namespaces, objects and outcomes, recorded in two flushes. Each profile is
compared with the same facts counted in plain Python from the events themselves, and with the grouped
queries the database answers very large scopes with.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import func, select

from graph.auditlog import event
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as tables
from kubeguard.graph.recorder import ActivityRecorder

DAY_1 = queries.parse_time("2026-11-20T00:00:00Z")
USERS = ["alice", "bob", "carol", "system:serviceaccount:kube-system:job-controller"]
IPS = ["203.0.113.5", "203.0.113.9", "198.51.100.7", "10.0.0.4", "10.0.0.5"]
AGENTS = ["kubectl/v1.31.0 (linux/amd64)", "curl/8.5.0", "python-requests/2.32.3"]
CALLS = [("get", "pods"), ("list", "secrets"), ("create", "configmaps"), ("delete", "pods"), ("list", "namespaces")]
CODES = [200, 200, 201, 401, 403, 404, 500]


def random_log(seed: int = 5, size: int = 400) -> list[dict]:
    """The calls as plain dicts (what a person would count), each with its audit event under ``event``."""
    rng = random.Random(seed)
    calls = []
    for index in range(size):
        verb, resource = rng.choice(CALLS)
        namespace = "" if resource == "namespaces" else rng.choice(["dev", "prod"])
        name = rng.choice(["", "a", "b"]) if namespace else ""
        minute = rng.randrange(2 * 24 * 60)
        day = "2026-11-20" if minute < 24 * 60 else "2026-11-21"
        clock = f"{minute // 60 % 24:02d}:{minute % 60:02d}"
        call = {
            "user": rng.choice(USERS),
            "ip": rng.choice(IPS),
            "agent": rng.choice(AGENTS),
            "verb": verb,
            "resource": resource,
            "namespace": namespace,
            "name": name,
            "code": rng.choice(CODES),
            "cluster": rng.choice(["lab", "edge"]),
            "hour": DAY_1 + minute // 60 * queries.HOUR_MS,
        }
        path = f"/api/v1/namespaces/{namespace}/{resource}" if namespace else f"/api/v1/{resource}"
        call["uri"] = path + (f"/{name}" if name else "")
        call["event"] = event(
            clock, user=call["user"], ip=call["ip"], agent=call["agent"], verb=verb, resource=resource,
            code=call["code"], namespace=namespace, name=name, day=day, cluster=call["cluster"],
        )
        # Distinct audit IDs: the helper's are made of the minute, user, verb and resource.
        call["event"].auditID = f"call-{index}"
        calls.append(call)
    return calls


def record(engine, calls) -> None:
    for part in (calls[: len(calls) // 2], calls[len(calls) // 2 :]):
        recorder = ActivityRecorder()
        for call in part:
            recorder.observe(call["event"])
        with engine.begin() as conn:
            recorder.flush(conn)


def is_of(call: dict, kind: str, key: str) -> bool:
    if kind == kinds.SUBJECT:
        return call["user"] == key
    if kind == kinds.IP:
        return call["ip"] == key
    if kind == kinds.USER_AGENT:
        return call["agent"] == key
    if kind == kinds.CLUSTER:
        return call["cluster"] == key
    if kind == kinds.NAMESPACE:
        return f"{call['cluster']}/{call['namespace']}" == key
    if kind == kinds.POD:
        return call["resource"] == "pods" and f"{call['namespace']}/{call['name']}" == key
    raise AssertionError(kind)


def plain_profile(calls, kind: str, key: str, scope: queries.Scope):
    """(calls per hour and outcome, per breakdown dimension {value: [count, failed]}, drill-down leaves)."""
    first_hour = scope.start_ms - scope.start_ms % queries.HOUR_MS
    mine = [c for c in calls if is_of(c, kind, key) and first_hour <= c["hour"] < scope.end_ms]
    per_hour = Counter((c["hour"], kinds.outcome(c["code"])) for c in mine)
    dimensions = {
        "subjects": lambda c: c["user"],
        "ips": lambda c: c["ip"],
        "userAgents": lambda c: c["agent"],
        "calls": lambda c: f"{c['verb']} {c['resource']}",
        "clusters": lambda c: c["cluster"],
        "namespaces": lambda c: f"{c['cluster']}/{c['namespace']}" if c["namespace"] else "",
    }
    breakdown = {}
    for name, value_of in dimensions.items():
        cells: dict[str, list[int]] = {}
        for c in mine:
            cell = cells.setdefault(value_of(c), [0, 0])
            cell[0] += 1
            cell[1] += kinds.outcome(c["code"]) != "success"
        breakdown[name] = cells
    leaves = Counter(
        (c["user"], c["ip"], f"{c['verb']} {c['resource']}", c["uri"], kinds.outcome(c["code"])) for c in mine
    )
    return per_hour, breakdown, leaves


def flatten(tree) -> Counter:
    """The drill-down's leaves, checking on the way that every node counts what its children count and
    that siblings come busiest first."""
    leaves: Counter = Counter()

    def descending(items):
        counts = [item["count"] for item in items]
        assert counts == sorted(counts, reverse=True)

    descending(tree)
    for subject in tree:
        assert subject["count"] == sum(ip["count"] for ip in subject["ips"])
        descending(subject["ips"])
        for ip in subject["ips"]:
            assert ip["count"] == sum(call["count"] for call in ip["calls"])
            descending(ip["calls"])
            for call in ip["calls"]:
                assert call["count"] == sum(uri["count"] for uri in call["uris"])
                descending(call["uris"])
                for uri in call["uris"]:
                    assert uri["count"] == sum(uri["outcomes"].values())
                    for outcome, count in uri["outcomes"].items():
                        leaves[(subject["subject"], ip["ip"], call["call"], uri["uri"], outcome)] += count
    return leaves


CASES = [
    (kinds.SUBJECT, "alice", queries.Scope(DAY_1, DAY_1 + queries.DAY_MS)),
    (kinds.SUBJECT, "system:serviceaccount:kube-system:job-controller",
     queries.Scope(DAY_1 + 5 * queries.HOUR_MS + 1_800_000, DAY_1 + 30 * queries.HOUR_MS)),
    (kinds.CLUSTER, "lab", queries.Scope(DAY_1, DAY_1 + 2 * queries.DAY_MS)),
    (kinds.IP, "10.0.0.4", queries.Scope(DAY_1 + 12 * queries.HOUR_MS, DAY_1 + 36 * queries.HOUR_MS)),
    (kinds.USER_AGENT, "curl/8.5.0", queries.Scope(DAY_1, DAY_1 + 2 * queries.DAY_MS)),
    (kinds.NAMESPACE, "edge/dev", queries.Scope(DAY_1, DAY_1 + 2 * queries.DAY_MS)),
    (kinds.POD, "prod/a", queries.Scope(DAY_1, DAY_1 + 2 * queries.DAY_MS)),
    (kinds.SUBJECT, "nobody", queries.Scope(DAY_1, DAY_1 + queries.DAY_MS)),
]


@pytest.mark.parametrize("in_memory", [True, False], ids=["per shape", "grouped by the database"])
def test_profiles_count_what_a_plain_count_of_the_log_counts(engine, monkeypatch, in_memory):
    calls = random_log()
    record(engine, calls)
    if not in_memory:
        monkeypatch.setattr(queries, "PROFILE_ROWS_IN_MEMORY", 1)
    with engine.connect() as conn:
        for kind, key, scope in CASES:
            profile = queries.profile_activity(conn, kind, key, scope)
            per_hour, breakdown, leaves = plain_profile(calls, kind, key, scope)
            hours = scope.hours()
            series = profile["activity"]
            assert series["total"] == sum(per_hour.values()), (kind, key)
            for outcome, values in series["outcomes"].items():
                assert values == [per_hour.get((hour, outcome), 0) for hour in hours], (kind, key, outcome)
            assert {outcome for (_, outcome) in per_hour} <= set(series["outcomes"])
            for name, cells in breakdown.items():
                ranked = sorted(cells.items(), key=lambda item: (-item[1][0], item[0]))[: queries.TOP_LIMIT]
                expected = [{"value": value, "count": count, "failed": failed} for value, (count, failed) in ranked]
                assert profile["breakdown"].get(name, []) == expected, (kind, key, name)
            assert flatten(profile["drilldown"]) == leaves, (kind, key)
            # The per-shape fold and the database's grouped queries give the same answer, order included.
            assert profile["activity"] == queries.series(conn, kind, key, scope)
            assert profile["drilldown"] == queries.drilldown(conn, kind, key, scope)
            if per_hour:
                assert profile["breakdown"] == queries.breakdown(conn, kind, key, scope)


def test_the_log_has_what_the_cases_need():
    """The cases read something: each entity has calls in its scope, and outcomes vary (one of them none)."""
    calls = random_log()
    for kind, key, scope in CASES[:-1]:
        per_hour, _, leaves = plain_profile(calls, kind, key, scope)
        assert sum(per_hour.values()) >= 5, (kind, key)
        assert len({outcome for _, outcome in per_hour}) >= 2, (kind, key)
    assert not plain_profile(calls, *CASES[-1])[0]


def test_the_row_count_is_exact_or_the_databases_own_estimate(engine):
    """The summary's roll-up row count: exact below the threshold; above it PostgreSQL's estimate, which
    ANALYZE makes exact for a table this small."""
    record(engine, random_log())
    with engine.connect() as conn:
        exact = conn.execute(select(func.count()).select_from(tables.activity_counts)).scalar()
        assert exact > 100
        assert queries.activity_row_count(conn) == (exact, False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE kg_activity")
            conn.commit()
            assert queries.activity_row_count(conn, estimate_above=0) == (exact, True)
    else:
        with engine.connect() as conn:
            assert queries.activity_row_count(conn, estimate_above=0) == (exact, False)
