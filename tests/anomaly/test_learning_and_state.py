"""Learning period, persistence across restarts, bounded memory."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from pathlib import Path

import msgspec

from kubeguard.detectors.anomaly.baselines import BLOB_NAME, Baselines, Observation, observe
from kubeguard.detectors.anomaly.profile import PRINCIPAL_CAP
from kubeguard.detectors.state import MemoryState

from .test_types import WHEN, bind_cluster_admin, read_secret
from .traffic import ATTACK_AGENT, START, VPS_IP, anomalies, event, habits, pipeline


def test_nothing_is_raised_while_the_cluster_is_learning() -> None:
    """Six days of history is inside the default seven-day learning period, however unusual the action."""
    pipe = pipeline()
    anomalies(pipe, habits(days=6))
    assert anomalies(pipe, [bind_cluster_admin(START + timedelta(days=6, hours=3), ip=VPS_IP,
                                               agent=ATTACK_AGENT)]) == []


def test_learning_period_is_configurable() -> None:
    pipe = pipeline(learning_days=2.0)
    anomalies(pipe, habits(days=3))
    assert anomalies(pipe, [bind_cluster_admin(START + timedelta(days=3), ip=VPS_IP, agent=ATTACK_AGENT)])


def test_a_principal_with_too_little_history_is_not_judged() -> None:
    """The cluster is old, but bob has only 20 calls behind him (< min_principal_events = 50)."""
    bob = "arn:aws:sts::111122223333:assumed-role/developers/bob"
    pipe = pipeline()
    anomalies(pipe, habits())
    anomalies(pipe, habits(days=1, start=START + timedelta(days=7), per_day=20, arn=bob))
    assert anomalies(pipe, [bind_cluster_admin(WHEN, ip=VPS_IP, agent=ATTACK_AGENT, arn=bob)]) == []


def test_sessions_of_one_role_are_profiled_per_person() -> None:
    """Many people share the IAM role ``developers``; each session ARN gets its own profile."""
    baselines = Baselines()
    for arn in ("arn:aws:sts::1:assumed-role/developers/alice", "arn:aws:sts::1:assumed-role/developers/bob"):
        baselines.learn(observe(event("list", "pods", "shop", at=START, arn=arn)))
    assert sorted(baselines.clusters["prod"].principals) == [
        "arn:aws:sts::1:assumed-role/developers/alice", "arn:aws:sts::1:assumed-role/developers/bob"]


def test_a_restart_neither_forgets_nor_relearns(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = pipeline(MemoryState.load(path))
    anomalies(first, habits(also=lambda at: [read_secret(at)]))
    first.save_state()
    first.engine.context.state.save(path)

    restarted = pipeline(MemoryState.load(path))
    assert restarted.baselines.clusters == first.baselines.clusters
    # No re-learning: the first unusual action after the restart is judged at once ...
    assert anomalies(restarted, [bind_cluster_admin(WHEN, ip=VPS_IP, agent=ATTACK_AGENT)])
    # ... and the habit learned before the restart is still a habit.
    assert anomalies(restarted, [read_secret(WHEN + timedelta(minutes=5))]) == []


def test_baselines_round_trip_through_bytes_and_state_blobs() -> None:
    baselines = Baselines()
    for item in habits(days=2):
        baselines.learn(observe(item), {"image": ["ghcr.io/example/web"]})
    data = baselines.to_bytes()
    assert Baselines.from_bytes(data).clusters == baselines.clusters
    state = MemoryState()
    assert baselines.save(state)
    assert state.get_blob(BLOB_NAME) == data
    assert isinstance(state.blobs[BLOB_NAME], str)


def test_feature_values_are_capped_with_an_other_bucket() -> None:
    baselines = Baselines()
    for index in range(PRINCIPAL_CAP + 100):
        baselines.learn(observe(event("list", "pods", f"team-{index}", at=START)))
    namespaces = next(iter(baselines.clusters["prod"].principals.values())).features["namespace"]
    assert len(namespaces.counts) == PRINCIPAL_CAP
    assert namespaces.other == 100
    assert namespaces.total == PRINCIPAL_CAP + 100


def test_least_recently_active_principals_are_evicted(caplog) -> None:
    baselines = Baselines(max_principals=1_000)
    for index in range(2_500):
        seen = observe(event("list", "pods", "shop", at=START + timedelta(seconds=index), arn=f"arn:x/p{index}"))
        baselines.learn(seen)
    principals = baselines.clusters["prod"].principals
    assert len(principals) <= 1_000
    assert "arn:x/p2499" in principals and "arn:x/p0" not in principals
    # Each overflow drops a tenth of the cap, counted and logged: 2,500 new principals, 1,000 kept at most.
    assert baselines.evicted == 2_500 - len(principals)
    warnings = [r.getMessage() for r in caplog.records if r.name == "kubeguard.detectors.anomaly.baselines"]
    assert len(warnings) == baselines.evicted // 100
    assert warnings[-1].endswith(f"({baselines.evicted} so far)")


def test_memory_for_ten_thousand_principals_is_bounded() -> None:
    """10,000 principals, each with a realistic spread of values, stay well under 100 MB."""
    tracemalloc.start()
    baselines = Baselines()
    calls = ("list pods", "get pods", "list deployments", "get configmaps", "watch services", "get secrets")
    for index in range(10_000):
        for call, api in enumerate(calls):
            for namespace in ("shop", "payments"):
                values = {"kubernetesApi": api, "namespace": namespace, "userAgent": "kubectl/v1.30",
                          "network": f"10.{index % 250}.{call}.0/24", "asnOrg": "UNKNOWN"}
                baselines.learn(Observation("prod", f"arn:x/p{index}", 1_767_600_000 + call, values))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(baselines.clusters["prod"].principals) == 10_000
    assert size < 100 * 1024 * 1024


def test_deferred_history_of_every_session_is_folded_before_a_judgement() -> None:
    """EKS writes a new ``extra`` (access key, session) per session; the principal's pending history of all
    of them must reach its profile before it is judged, or habits would look new."""
    baselines = Baselines()
    for day in range(3):
        for call in range(5):
            seen = event("list", "pods", "shop", at=START + timedelta(days=day, minutes=call))
            seen.user.extra = msgspec.Raw(msgspec.json.encode(
                {"arn": ["arn:aws:sts::1:assumed-role/developers/alice"], "accessKeyId": [f"ASIA{day}"]}
            ))
            baselines.defer(seen)
    judged = event("list", "pods", "shop", at=START + timedelta(days=3))
    judged.user.extra = msgspec.Raw(msgspec.json.encode(
        {"arn": ["arn:aws:sts::1:assumed-role/developers/alice"], "accessKeyId": ["ASIA9"]}
    ))
    baselines.flush_owner(judged)
    profile = baselines.clusters["prod"].principals["arn:aws:sts::1:assumed-role/developers/alice"]
    assert profile.events == 15
    assert profile.features["kubernetesApi"].counts == {"list pods": 15}
