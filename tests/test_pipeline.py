"""The pipeline's stage filter, de-duplication and aggregation into one finding per fingerprint."""

from __future__ import annotations

from kubeguard.batch.window import EventWindow
from kubeguard.config import Settings
from kubeguard.detectors.signatures.exec_in_kube_system_pod import ExecInKubeSystemPod
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline


def _exec(make_event, audit_id, stage, *, ts="2024-05-14T09:31:07.412Z", user="admin", pod="kube-proxy-x"):
    return make_event({
        "auditID": audit_id, "stage": stage, "verb": "create",
        "requestURI": f"/api/v1/namespaces/kube-system/pods/{pod}/exec?command=sh",
        "user": {"username": user}, "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "kube-system", "name": pod},
        "responseStatus": {"code": 101}, "annotations": {"authorization.k8s.io/decision": "allow"},
        "stageTimestamp": ts,
    })


def _run(events):
    pipeline = Pipeline(Settings(), MemoryState(), detectors=[ExecInKubeSystemPod()])
    findings = FindingSet()
    for event in events:
        for finding in pipeline.process_event(event):
            findings.add(finding)
    return pipeline, findings.values()


def test_exec_logged_at_started_and_complete_stages_counts_once(make_event):
    pipeline, [finding] = _run([_exec(make_event, "a", "ResponseStarted"), _exec(make_event, "a", "ResponseComplete"),
                                _exec(make_event, "a", "RequestReceived")])
    assert finding["service"]["count"] == 1
    assert (pipeline.stats.counted, pipeline.stats.duplicates, pipeline.stats.other_stages) == (1, 1, 1)


def test_occurrences_aggregate_into_one_finding_with_a_stable_id(make_event):
    _, [finding] = _run([_exec(make_event, "a", "ResponseComplete", ts="2024-05-14T09:31:07.412Z"),
                         _exec(make_event, "b", "ResponseComplete", ts="2024-05-14T10:00:00.000Z"),
                         _exec(make_event, "c", "ResponseComplete", ts="2024-05-14T08:00:00.000Z")])
    assert finding["service"]["count"] == 3
    assert finding["service"]["eventFirstSeen"] == "2024-05-14T08:00:00.000Z"
    assert finding["service"]["eventLastSeen"] == "2024-05-14T10:00:00.000Z"
    _, [replayed] = _run([_exec(make_event, "z", "ResponseComplete")])
    assert replayed["id"] == finding["id"]


def test_different_pod_or_user_is_a_different_finding(make_event):
    _, findings = _run([_exec(make_event, "a", "ResponseComplete"),
                        _exec(make_event, "b", "ResponseComplete", pod="coredns-1"),
                        _exec(make_event, "c", "ResponseComplete", user="mallory")])
    assert len({f["id"] for f in findings}) == 3


def test_the_window_remembers_a_key_for_the_clusters_last_n_counted_events():
    window = EventWindow(size=2)
    assert window.first("a", "1", "x") and window.first("a", "2", "x")
    assert not window.first("a", "1", "x")  # counted one event ago
    assert window.first("a", "3", "x")  # 1 is now two counted events back: out of the window
    assert window.first("a", "1", "x")
    assert window.first("b", "3", "x"), "another cluster's identical auditID is a different event"
    assert not window.first("a", "1", "x")
