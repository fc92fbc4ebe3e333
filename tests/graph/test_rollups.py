"""The activity store's roll-ups against a small log whose counts are worked out by hand below.

The log (cluster ``lab``, 2026-11-20, UTC):

    10:05  alice  203.0.113.5   kubectl   get pods -n dev            200
    10:10  alice  203.0.113.5   kubectl   list secrets -n dev        403
    10:40  alice  203.0.113.5   kubectl   list secrets -n dev        403
    10:30  bob    203.0.113.9   curl      get namespaces             401
    10:50  alice  203.0.113.5   kubectl   create pods dev/reader     201  (busybox, privileged, hostPath /etc)
    10:55  alice  203.0.113.5   kubectl   create rolebindings dev    201  (grants ClusterRole admin to bob)
    11:20  alice  198.51.100.7  python    get secrets -n dev         200
    11:25  alice  198.51.100.7  python    create pods/exec dev/reader 101

By hand: alice made 7 calls, bob 1. In hour 10 alice has 3 successful calls (get, two creates) and 2
forbidden ones, bob 1 unauthorized; in hour 11 alice has 2 successful calls, from an address, with a user
agent and of two API calls she had not used before.
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from graph.auditlog import event
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as tables
from kubeguard.graph.recorder import ActivityRecorder

HOUR_10 = queries.parse_time("2026-11-20T10:00:00Z")
HOUR_11 = HOUR_10 + queries.HOUR_MS
DAY = queries.Scope(HOUR_10 - 10 * queries.HOUR_MS, HOUR_10 + 14 * queries.HOUR_MS)
KUBECTL = "kubectl/v1.31.0 (linux/amd64)"
PYTHON = "python-requests/2.32.3"

POD = {
    "kind": "Pod",
    "metadata": {"name": "reader", "namespace": "dev"},
    "spec": {
        "serviceAccountName": "builder",
        "containers": [
            {"name": "shell", "image": "busybox:1.36", "securityContext": {"privileged": True},
             "volumeMounts": [{"name": "host", "mountPath": "/host"}]}
        ],
        "volumes": [{"name": "host", "hostPath": {"path": "/etc"}}],
    },
}
BINDING = {
    "kind": "RoleBinding",
    "metadata": {"name": "bob-admin", "namespace": "dev"},
    "roleRef": {"kind": "ClusterRole", "name": "admin"},
    "subjects": [{"kind": "User", "name": "bob"}],
}


def lab_log():
    alice = {"user": "alice", "ip": "203.0.113.5", "agent": KUBECTL}
    return [
        event("10:05", verb="get", resource="pods", namespace="dev", code=200, **alice),
        event("10:10", verb="list", resource="secrets", namespace="dev", code=403, **alice),
        event("10:40", verb="list", resource="secrets", namespace="dev", code=403, **alice),
        event("10:30", user="bob", ip="203.0.113.9", agent="curl/8.5.0", verb="get", resource="namespaces", code=401),
        event("10:50", verb="create", resource="pods", namespace="dev", name="reader", code=201, body=POD, **alice),
        event("10:55", verb="create", resource="rolebindings", namespace="dev", code=201, body=BINDING, **alice),
        event("11:20", user="alice", ip="198.51.100.7", agent=PYTHON, verb="get", resource="secrets",
              namespace="dev", name="db", code=200),
        event("11:25", user="alice", ip="198.51.100.7", agent=PYTHON, verb="create", resource="pods",
              subresource="exec", namespace="dev", name="reader", code=101, stage="ResponseStarted"),
    ]


def record(engine, events, findings=()):
    recorder = ActivityRecorder()
    for item in events:
        recorder.observe(item)
    recorder.observe_findings(list(findings))
    with engine.begin() as conn:
        recorder.flush(conn)
    return recorder


def test_calls_per_hour_by_outcome(engine):
    record(engine, lab_log())
    with engine.connect() as conn:
        alice = queries.series(conn, kinds.SUBJECT, "alice", DAY)
        bob = queries.series(conn, kinds.SUBJECT, "bob", DAY)
        cluster = queries.series(conn, kinds.CLUSTER, "lab", DAY)
    hour = {h: i for i, h in enumerate(alice["hours"])}
    ten, eleven = hour["2026-11-20T10:00:00Z"], hour["2026-11-20T11:00:00Z"]
    assert alice["outcomes"]["success"][ten] == 3  # get pods, create pod, create binding
    assert alice["outcomes"]["forbidden"][ten] == 2
    assert alice["outcomes"]["success"][eleven] == 2  # get secrets, exec
    assert alice["total"] == 7
    assert bob["outcomes"]["unauthorized"][ten] == 1 and bob["total"] == 1
    assert cluster["total"] == 8


def test_breakdown_and_drilldown(engine):
    record(engine, lab_log())
    with engine.connect() as conn:
        breakdown = queries.breakdown(conn, kinds.SUBJECT, "alice", DAY)
        tree = queries.drilldown(conn, kinds.SUBJECT, "alice", DAY)
        by_ip = queries.breakdown(conn, kinds.IP, "203.0.113.5", DAY)
    calls = {row["value"]: (row["count"], row["failed"]) for row in breakdown["calls"]}
    assert calls["list secrets"] == (2, 2)
    assert calls["get secrets"] == (1, 0)
    assert {row["value"]: row["count"] for row in breakdown["ips"]} == {"203.0.113.5": 5, "198.51.100.7": 2}
    # Namespaces are named by their entity key, cluster/namespace: two clusters' "dev" are two rows.
    assert {row["value"] for row in breakdown["namespaces"]} == {"lab/dev"}
    assert {row["value"] for row in breakdown["clusters"]} == {"lab"}
    assert {row["value"] for row in by_ip["subjects"]} == {"alice"}
    [alice] = tree
    new_address = next(ip for ip in alice["ips"] if ip["ip"] == "198.51.100.7")
    secrets = next(call for call in new_address["calls"] if call["call"] == "get secrets")
    assert secrets["uris"] == [{"uri": "/api/v1/namespaces/dev/secrets/db", "outcomes": {"success": 1}, "count": 1}]


def test_newly_observed_against_the_first_hour(engine):
    record(engine, lab_log())
    eleven = queries.Scope(HOUR_11, HOUR_11 + queries.HOUR_MS)
    with engine.connect() as conn:
        new = queries.newly_observed(conn, "alice", eleven)
        usual_ips = queries.usual(conn, "alice", "ip", HOUR_11)
    assert [item["value"] for item in new["ip"]] == ["198.51.100.7"]
    assert [item["value"] for item in new["user_agent"]] == [PYTHON]
    assert [item["value"] for item in new["call"]] == ["get secrets", "create pods/exec"]
    assert new["ip"][0]["firstSeen"] == "2026-11-20T11:20:00Z"
    assert [item["value"] for item in usual_ips] == ["203.0.113.5"]


def test_pods_images_rbac_and_exec_edges(engine):
    record(engine, lab_log())
    with engine.connect() as conn:
        pod = queries.entity(conn, kinds.POD, "dev/reader")
        created = queries.edges_of(conn, kinds.SUBJECT, "alice", "created", outgoing=True)
        execs = queries.edges_of(conn, kinds.SUBJECT, "alice", "exec into", outgoing=True)
        granted = queries.edges_of(conn, kinds.SUBJECT, "bob", "granted", outgoing=False)
        namespaces = queries.edges_of(conn, kinds.IMAGE, "busybox:1.36", "used in", outgoing=True)
        account = queries.edges_of(conn, kinds.POD, "dev/reader", "runs as", outgoing=True)
    attrs = pod["attributes"]
    assert attrs["images"] == ["busybox:1.36"] and attrs["privileged"] == ["shell"]
    assert attrs["hostPaths"] == ["/etc"] and attrs["createdBy"] == "alice"
    assert [e["target"]["key"] for e in created] == ["dev/reader"]
    assert [e["target"]["key"] for e in execs] == ["dev/reader"]
    assert [(e["source"]["key"], e["detail"]) for e in granted] == [
        ("alice", "ClusterRole admin in dev (binding bob-admin)")
    ]
    assert [e["target"]["key"] for e in namespaces] == ["lab/dev"]
    assert [e["target"]["key"] for e in account] == ["system:serviceaccount:dev:builder"]


def test_two_batches_add_up_and_an_uncommitted_batch_counts_nothing(engine):
    log = lab_log()
    record(engine, log[:3])
    record(engine, log[3:])
    lost = ActivityRecorder()
    for item in log:
        lost.observe(item)
    lost.discard()  # its transaction failed: the batch will be replayed, so nothing of it may stay
    with engine.begin() as conn:
        lost.flush(conn)
    with engine.connect() as conn:
        assert queries.series(conn, kinds.CLUSTER, "lab", DAY)["total"] == 8
        alice = queries.entity(conn, kinds.SUBJECT, "alice")
        rows = conn.execute(select(func.sum(tables.activity.c["count"]))).scalar()
    assert alice["events"] == 7 and rows == 8
    assert alice["firstSeen"] == "2026-11-20T10:05:00Z" and alice["lastSeen"] == "2026-11-20T11:25:00Z"


def test_a_finding_links_to_every_entity_it_names(engine):
    finding = {
        "id": "f1", "type": "Discovery:Kubernetes/MaliciousIPCaller", "updatedAt": "2026-11-20T11:30:00.000Z",
        "resource": {"eksClusterDetails": {"name": "lab"},
                     "kubernetesDetails": {"kubernetesUserDetails": {"username": "alice"}}},
        "service": {"eventLastSeen": "2026-11-20T11:20:00.000Z", "action": {"kubernetesApiCallAction": {
            "sourceIPs": ["198.51.100.7"], "userAgent": PYTHON, "namespace": "dev"}}},
    }
    record(engine, lab_log(), [finding])
    with engine.connect() as conn:
        for kind, key in [(kinds.SUBJECT, "alice"), (kinds.IP, "198.51.100.7"), (kinds.CLUSTER, "lab"),
                          (kinds.USER_AGENT, PYTHON), (kinds.NAMESPACE, "lab/dev")]:
            assert queries.related_finding_ids(conn, kind, key) == ["f1"], (kind, key)
        alice = queries.entity(conn, kinds.SUBJECT, "alice")
    assert alice["lastSeen"] == "2026-11-20T11:25:00Z"  # a finding is not activity


@pytest.mark.parametrize("text", ["<script>", "%", "_"])
def test_search_treats_its_text_literally(engine, text):
    record(engine, lab_log())
    with engine.connect() as conn:
        assert queries.search(conn, text) == []
        assert {r["key"] for r in queries.search(conn, "alic")} == {"alice"}


def test_subject_groups_become_attributes(engine):
    log = lab_log()
    record(engine, log)
    with engine.connect() as conn:
        attrs = conn.execute(
            select(tables.entities.c.attrs).where(tables.entities.c.kind == "subject", tables.entities.c.key == "alice")
        ).scalar()
    assert orjson.loads(attrs)["groups"] == ["developers", "system:authenticated"]


def test_later_attributes_merge_into_the_stored_ones_key_by_key(engine):
    """A second batch that learns more about an entity adds to its attributes and replaces what changed,
    in the upsert itself; a NUL in a value is stored as U+FFFD on both databases (jsonb refuses it)."""
    first = {"organization": {"asn": 64500, "asnOrg": "Example Net"}, "country": {"countryName": "Atlantis"}}
    later = {"organization": {"asn": 64500, "asnOrg": "Example\x00Net"}, "city": {"cityName": "Poseidonia"}}
    log = lab_log()
    for describe, events in ((first, log[:1]), (later, log[1:2])):
        recorder = ActivityRecorder(describe_ip=lambda _ip, answer=describe: answer)
        for item in events:
            recorder.observe(item)
        with engine.begin() as conn:
            recorder.flush(conn)
    with engine.connect() as conn:
        address = queries.entity(conn, kinds.IP, "203.0.113.5")
        alice = queries.entity(conn, kinds.SUBJECT, "alice")
    assert address["attributes"] == {
        "asn": "64500", "asnOrg": "Example\ufffdNet", "country": "Atlantis", "city": "Poseidonia"
    }
    assert address["events"] == 2
    assert alice["attributes"] == {"groups": ["developers", "system:authenticated"]}  # an empty update keeps it


def test_events_differing_in_one_dimension_are_counted_apart(engine):
    """Counters are keyed by a hash of the dimensions: every dimension still tells rows apart."""
    alice = {"user": "alice", "ip": "203.0.113.5", "agent": KUBECTL, "namespace": "dev"}
    log = [
        event("10:05", verb="get", resource="pods", name="a", code=200, **alice),
        event("10:06", verb="get", resource="pods", name="a", code=200, **alice),
        event("10:07", verb="get", resource="pods", name="b", code=200, **alice),
        event("10:08", verb="get", resource="pods", name="a", code=404, **alice),
        event("10:09", verb="get", resource="pods", name="a", subresource="log", code=200, **alice),
        event("11:05", verb="get", resource="pods", name="a", code=200, **alice),
        event("10:10", verb="get", resource="pods", name="a", code=200, user="bob", ip="203.0.113.5",
              agent=KUBECTL, namespace="dev"),
    ]
    record(engine, log)
    table = tables.activity
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.hour_ms, table.c.subject, table.c.resource, table.c.name, table.c.outcome, table.c["count"])
        ).all()
    by_row = {(hour, subject, resource, name, outcome): count for hour, subject, resource, name, outcome, count in rows}
    assert by_row == {
        (HOUR_10, "alice", "pods", "a", "success"): 2,
        (HOUR_10, "alice", "pods", "b", "success"): 1,
        (HOUR_10, "alice", "pods", "a", "failed"): 1,
        (HOUR_10, "alice", "pods/log", "a", "success"): 1,
        (HOUR_11, "alice", "pods", "a", "success"): 1,
        (HOUR_10, "bob", "pods", "a", "success"): 1,
    }


def _caller_finding(number: int, finding_type: str = "Discovery:Kubernetes/MaliciousIPCaller") -> dict:
    return {
        "id": f"f{number}", "type": finding_type, "severity": 5, "updatedAt": "2026-11-20T11:30:00.000Z",
        "resource": {"eksClusterDetails": {"name": "lab"},
                     "kubernetesDetails": {"kubernetesUserDetails": {"username": "alice"}}},
        "service": {"eventLastSeen": f"2026-11-20T11:2{number}:00.000Z", "action": {"kubernetesApiCallAction": {
            "sourceIPs": ["198.51.100.7"], "userAgent": PYTHON}}},
    }


def test_the_graph_of_a_subject_and_of_a_finding(engine):
    from kubeguard.store import findings as finding_store

    findings = [_caller_finding(n) for n in range(5)]
    record(engine, lab_log(), findings)
    with engine.begin() as conn:
        for finding in findings:
            finding_store.upsert(conn, finding)
    with engine.connect() as conn:
        around_alice = queries.neighbourhood(conn, kinds.SUBJECT, "alice", 1)
        around_finding = queries.neighbourhood(conn, kinds.FINDING, "f0", 2, finding=findings[0])
    ids = {node["id"] for node in around_alice["nodes"]}
    assert {"ip:203.0.113.5", "ip:198.51.100.7", f"useragent:{PYTHON}", "pod:dev/reader", "subject:bob"} <= ids
    groups = [node for node in around_alice["nodes"] if node["kind"] == "findings"]
    assert [(g["label"], sorted(g["members"])) for g in groups] == [
        ("5 × MaliciousIPCaller", ["f0", "f1", "f2", "f3", "f4"])
    ]
    depth = {node["id"]: node["depth"] for node in around_finding["nodes"]}
    assert depth["finding:f0"] == 0 and depth["subject:alice"] == 1 and depth["ip:198.51.100.7"] == 1
    assert depth["ip:203.0.113.5"] == 2  # reached through alice, one hop further out


def test_a_pod_shows_the_findings_about_the_deployment_that_runs_it(engine):
    from kubeguard.api.console import data

    template = {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}],
                         "volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]}}
    controller = "system:serviceaccount:kube-system:replicaset-controller"
    deployment = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "dev"}, "spec": {"template": template}}
    replicaset = {"kind": "ReplicaSet", "metadata": {"name": "web-5d4f", "namespace": "dev", "ownerReferences": [
        {"kind": "Deployment", "name": "web", "controller": True}]}, "spec": {"template": template}}
    pod = {"kind": "Pod", "metadata": {"name": "web-5d4f-x1", "namespace": "dev", "ownerReferences": [
        {"kind": "ReplicaSet", "name": "web-5d4f", "controller": True}]}, **template}
    writes = [
        event("12:00", user="alice", ip="203.0.113.5", agent=KUBECTL, verb="create", resource="deployments",
              namespace="dev", code=201, body=deployment),
        event("12:01", user=controller, ip="10.0.0.1", agent="kube-controller-manager", verb="create",
              resource="replicasets", namespace="dev", code=201, body=replicaset),
        event("12:02", user=controller, ip="10.0.0.1", agent="kube-controller-manager", verb="create",
              resource="pods", namespace="dev", code=201, body=pod),
    ]
    finding = {
        "id": "mount1", "type": "Persistence:Kubernetes/ContainerWithSensitiveMount", "severity": 5,
        "updatedAt": "2026-11-20T12:00:00.000Z",
        "resource": {"eksClusterDetails": {"name": "lab"}, "kubernetesDetails": {
            "kubernetesUserDetails": {"username": "alice"},
            "kubernetesWorkloadDetails": {"name": "web", "type": "deployments", "namespace": "dev"}}},
        "service": {"eventLastSeen": "2026-11-20T12:00:00.000Z"},
    }
    from kubeguard.store import findings as finding_store

    record(engine, writes, [finding])
    with engine.begin() as conn:
        finding_store.upsert(conn, finding)
    with engine.connect() as conn:
        view = data.entity_view(conn, kinds.POD, "dev/web-5d4f-x1", None, None)
    assert [f["id"] for f in view["findings"]] == ["mount1"]
    assert view["entity"]["attributes"]["hostPaths"] == ["/var/log"]


def test_a_profile_read_in_one_pass_equals_the_grouped_queries(engine, monkeypatch):
    record(engine, lab_log())
    with engine.connect() as conn:
        for kind, key in [(kinds.SUBJECT, "alice"), (kinds.CLUSTER, "lab"), (kinds.POD, "dev/reader")]:
            in_memory = queries.profile_activity(conn, kind, key, DAY)
            assert in_memory["activity"] == queries.series(conn, kind, key, DAY)
            assert in_memory["breakdown"] == queries.breakdown(conn, kind, key, DAY)
            assert in_memory["drilldown"] == queries.drilldown(conn, kind, key, DAY)
        monkeypatch.setattr(queries, "PROFILE_ROWS_IN_MEMORY", 1)  # too many rows: the database aggregates
        assert queries.profile_activity(conn, kinds.SUBJECT, "alice", DAY)["activity"]["total"] == 7


def test_a_repeated_write_counts_every_time_and_the_latest_write_wins(engine):
    """The same binding written three times and a pod written with one body, then another, then the first
    again (each distinct write is derived once per flush): the edge counts all three, its times span them,
    and the pod's attributes are those of the write seen last, as when every event was derived alone."""
    alice = {"user": "alice", "ip": "203.0.113.5", "agent": KUBECTL, "namespace": "dev"}
    other = {**POD, "spec": {**POD["spec"], "containers": [{"name": "shell", "image": "alpine:3.20"}],
                              "volumes": []}}
    log = [
        event("10:30", verb="create", resource="rolebindings", code=201, body=BINDING, **alice),
        event("10:05", verb="create", resource="rolebindings", code=201, body=BINDING, **alice),
        event("10:45", verb="create", resource="rolebindings", code=201, body=BINDING, **alice),
        event("10:10", verb="update", resource="pods", name="reader", code=200, body=POD, **alice),
        event("10:20", verb="update", resource="pods", name="reader", code=200, body=other, **alice),
        event("10:40", verb="update", resource="pods", name="reader", code=200, body=POD, **alice),
        event("10:50", verb="update", resource="pods", name="reader", code=409, body=other, **alice),
    ]
    record(engine, log)
    with engine.connect() as conn:
        granted = queries.edges_of(conn, kinds.SUBJECT, "bob", "granted", outgoing=False)
        changed = queries.edges_of(conn, kinds.SUBJECT, "alice", "changed", outgoing=True)
        images = queries.edges_of(conn, kinds.POD, "dev/reader", "runs", outgoing=True)
        pod = queries.entity(conn, kinds.POD, "dev/reader")
    assert [(e["count"], e["first"], e["last"]) for e in granted] == [
        (3, "2026-11-20T10:05:00Z", "2026-11-20T10:45:00Z")
    ]
    assert [(e["count"], e["first"], e["last"]) for e in changed] == [
        (3, "2026-11-20T10:10:00Z", "2026-11-20T10:40:00Z")
    ]
    assert sorted((e["target"]["key"], e["count"]) for e in images) == [("alpine:3.20", 1), ("busybox:1.36", 2)]
    assert pod["attributes"]["images"] == ["busybox:1.36"]
    assert pod["attributes"]["createdAt"] == "2026-11-20T10:40:00.000000Z"
    assert (pod["firstSeen"], pod["lastSeen"]) == ("2026-11-20T10:10:00Z", "2026-11-20T10:50:00Z")  # any call


def test_a_nul_in_a_call_is_stored_as_a_replacement_character(engine):
    """PostgreSQL refuses NUL in text: a user agent holding one is stored with U+FFFD in the roll-up shape,
    the entity and the edge alike, so its profile and the subject's edge still meet."""
    agent = "curl\x00evil/1.0"
    log = [event("10:05", user="mallory", ip="203.0.113.66", agent=agent, verb="get", resource="secrets",
                 namespace="dev", code=403),
           event("10:06", user="mallory", ip="203.0.113.66", agent=agent, verb="get", resource="secrets",
                 namespace="dev", code=403)]
    record(engine, log)
    stored = "curl\ufffdevil/1.0"
    with engine.connect() as conn:
        profile = queries.profile_activity(conn, kinds.USER_AGENT, stored, DAY)
        used = queries.edges_of(conn, kinds.SUBJECT, "mallory", "with", outgoing=True)
        entity = queries.entity(conn, kinds.USER_AGENT, stored)
    assert profile["activity"]["outcomes"]["forbidden"][10] == 2
    assert [row["value"] for row in profile["breakdown"]["userAgents"]] == [stored]
    assert [(e["target"]["key"], e["count"]) for e in used] == [(stored, 2)]
    assert entity is not None and entity["events"] == 2


def test_a_finding_id_prefix_is_a_range_that_finds_exactly_the_ids_starting_with_it(engine):
    """Search finds findings by id prefix through the id's index (a range, not LIKE): the same ids as
    ``startswith``, for prefixes ending in the highest characters too, and literally (no wildcards)."""
    from kubeguard.store import findings as finding_store

    ids = ["ab", "ab0", "abz", "ac", "a%b", "a_b", "a\u00ffx", "a\u0100", "a\ud7ffz", "a\ue000", "b\U0010ffffz", "c"]
    with engine.begin() as conn:
        for number, finding_id in enumerate(ids):
            finding_store.upsert(conn, {
                "id": finding_id, "type": f"Policy:Kubernetes/T{number}", "severity": 2, "updatedAt": "2026-01-01T00:00:00Z",
                "resource": {"eksClusterDetails": {"name": "lab"}}, "service": {"detectorId": "d" * 32, "count": 1},
            })
    with engine.connect() as conn:
        for prefix in ["a", "ab", "a%", "a_", "a\u00ff", "a\ud7ff", "b\U0010ffff", "b", "abc", "A"]:
            found = [r["key"] for r in queries.search(conn, prefix) if r["kind"] == kinds.FINDING]
            assert found == sorted(i for i in ids if i.startswith(prefix))[:10], prefix


def test_the_newest_edges_of_both_ends_merged_equal_one_query_with_or(engine):
    """neighbours() reads each end's newest edges in index order and merges them: the same edges, in the
    same order (most recent, then id), as one query over both ends, ties in time and a loop included."""
    from sqlalchemy import and_, or_

    rows = []
    for number in range(60):
        src, dst = ("ns", f"other-{number % 7}") if number % 3 else (f"other-{number % 5}", "ns")
        rows.append({"id": number * 7919 % 1000 - 500, "src_kind": "namespace", "src_key": src, "relation": "in",
                     "dst_kind": "namespace", "dst_key": dst, "detail": "", "first_ms": 1,
                     "last_ms": 1000 + number % 9, "count": 1})
    rows.append({**rows[0], "id": 999, "src_key": "ns", "dst_key": "ns"})
    with engine.begin() as conn:
        conn.execute(tables.edges.insert(), rows)
    table = tables.edges
    with engine.connect() as conn:
        for limit in (1, 5, 24, 100):
            plain = conn.execute(
                select(table).where(or_(and_(table.c.src_kind == "namespace", table.c.src_key == "ns"),
                                        and_(table.c.dst_kind == "namespace", table.c.dst_key == "ns")))
                .order_by(table.c.last_ms.desc(), table.c.id).limit(limit)
            ).mappings().all()
            assert queries.neighbours(conn, "namespace", "ns", limit) == [queries._edge_dict(r) for r in plain]


def test_writes_with_bodies_of_equal_length_are_told_apart(engine):
    """Two bodies of the same length (one image tag differs by a digit) are two distinct writes: a repeat is
    known by comparing the bodies, not their lengths, so each write's images and the latest attributes are
    as when every event was derived alone, and a repeat of either body only counts."""
    alice = {"user": "alice", "ip": "203.0.113.5", "agent": KUBECTL, "namespace": "dev"}
    newer = {**POD, "spec": {**POD["spec"], "containers": [{**POD["spec"]["containers"][0], "image": "busybox:1.37"}]}}
    assert len(orjson.dumps(newer)) == len(orjson.dumps(POD))
    log = [
        event("10:10", verb="update", resource="pods", name="reader", code=200, body=POD, **alice),
        event("10:20", verb="update", resource="pods", name="reader", code=200, body=newer, **alice),
        event("10:30", verb="update", resource="pods", name="reader", code=200, body=newer, **alice),
        event("10:40", verb="update", resource="pods", name="reader", code=200, body=POD, **alice),
        event("10:50", verb="update", resource="pods", name="reader", code=200, body=newer, **alice),
    ]
    recorder = ActivityRecorder()
    for item in log:
        recorder.observe(item)
    assert len(recorder._writes) == 2  # each body derived once
    assert recorder.pending >= 2 + 1  # the kept copies of the bodies count too
    with engine.begin() as conn:
        recorder.flush(conn)
    with engine.connect() as conn:
        images = queries.edges_of(conn, kinds.POD, "dev/reader", "runs", outgoing=True)
        pod = queries.entity(conn, kinds.POD, "dev/reader")
    assert sorted((e["target"]["key"], e["count"]) for e in images) == [("busybox:1.36", 2), ("busybox:1.37", 3)]
    assert pod["attributes"]["images"] == ["busybox:1.37"]
    assert pod["attributes"]["createdAt"] == "2026-11-20T10:50:00.000000Z"


def _first_sightings(engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(select(tables.first_seen.c.subject, tables.first_seen.c.dimension,
                                   tables.first_seen.c.value, tables.first_seen.c.first_seen_ms)).all()
    return {(subject, dimension, value): first for subject, dimension, value, first in rows}


class _Failed(Exception):
    pass


def test_first_sightings_a_flush_skips_are_those_a_committed_flush_stored(engine):
    """The recorder skips first sightings it stored before at an earlier or equal time, but only once their
    transaction committed, and never after retention pruned the store."""
    log = lab_log()
    recorder = ActivityRecorder()

    def flush(events, commit=True):
        for item in events:
            recorder.observe(item)
        try:
            with engine.begin() as conn:
                recorder.flush(conn)
                if not commit:
                    raise _Failed
        except _Failed:
            recorder.discard()

    flush(log[:3], commit=False)  # written, rolled back: nothing of it stored, nothing of it trusted
    flush(log[3:4])
    flush(log[:3])
    stored = _first_sightings(engine)
    assert ("alice", "ip", "203.0.113.5") in stored and ("bob", "ip", "203.0.113.9") in stored
    # Rewritten behind the recorder's back: a pair it trusts is not written again, an earlier one is.
    with engine.begin() as conn:
        conn.execute(tables.first_seen.delete())
    flush(log[:2])  # the same pairs at their stored times: skipped
    assert _first_sightings(engine) == {}
    earlier = event("09:00", user="alice", ip="203.0.113.5", agent=KUBECTL, verb="get", resource="pods",
                    namespace="dev", code=200)
    flush([earlier])
    assert _first_sightings(engine)[("alice", "ip", "203.0.113.5")] < stored[("alice", "ip", "203.0.113.5")]
    recorder.forget_stored_pairs()  # as retention does after deleting pairs
    flush(log[3:4])
    assert ("bob", "ip", "203.0.113.9") in _first_sightings(engine)


def test_subjects_whose_names_differ_past_the_kept_length_add_up_in_one_entity_and_edge(engine):
    """Names are kept to 512 characters: two subjects that differ only past that are one entity, one edge per
    relation, their counts added (on PostgreSQL, where a flush upserts each table in one statement too)."""
    stem = "u" * 512
    log = [
        event("10:05", user=stem + "-first", ip="203.0.113.5", agent=KUBECTL, verb="get", resource="pods",
              namespace="dev", code=200),
        event("10:35", user=stem + "-second", ip="203.0.113.5", agent=KUBECTL, verb="list", resource="pods",
              namespace="dev", code=200),
    ]
    record(engine, log)
    with engine.connect() as conn:
        subject = queries.entity(conn, kinds.SUBJECT, stem)
        edges = queries.edges_of(conn, kinds.SUBJECT, stem, "from", outgoing=True)
    assert subject["events"] == 2
    assert subject["firstSeen"] == "2026-11-20T10:05:00Z" and subject["lastSeen"] == "2026-11-20T10:35:00Z"
    assert [(edge["target"]["key"], edge["count"]) for edge in edges] == [("203.0.113.5", 2)]


def test_values_longer_than_their_columns_are_cut_not_refused(engine):
    """An audit log may name anything at any length (a request for a made-up object, say): PostgreSQL refuses
    a value longer than its column, which would fail the whole batch, so each is cut to fit."""
    long = event("10:05", user="mallory", ip="203.0.113.5" + "0" * 100, agent=KUBECTL, verb="get" * 20,
                 resource="widgets" * 40, namespace="n" * 300, name="x" * 1000, code=404)
    record(engine, [long], findings=[])
    with engine.connect() as conn:
        shapes = conn.execute(select(tables.activity_shapes)).mappings().all()
        mallory = queries.entity(conn, kinds.SUBJECT, "mallory")
    assert len(shapes) == 1 and mallory["events"] == 1
    for column in ("ip", "verb", "resource", "namespace", "name"):
        assert len(shapes[0][column]) == tables.activity_shapes.c[column].type.length
