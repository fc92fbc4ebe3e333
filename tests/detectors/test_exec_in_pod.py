"""Execution:Kubernetes/ExecInPod (audit-trail pack)."""

from __future__ import annotations

import json

from detectors.real_events import exec_event
from detectors.scanning import scan, types, with_pack

FINDING = "Execution:Kubernetes/ExecInPod"


def test_exec_into_an_application_pod_is_recorded_with_the_pack():
    [finding] = scan([exec_event("dev", "web-1", command=("sh", "-c", "id"))], packs=["audit-trail"])
    assert finding["type"] == FINDING
    assert finding["service"]["action"]["kubernetesApiCallAction"]["parameters"] == "sh -c id"


def test_silent_by_default_and_kube_system_is_guardduty_s_own_type():
    assert types([exec_event("dev", "web-1")]) == set()
    assert with_pack([exec_event("kube-system", "coredns-1")]) == {"Execution:Kubernetes/ExecInKubeSystemPod"}


def test_an_exec_that_never_connected_ran_nothing():
    assert with_pack([exec_event("dev", "web-1", code=404, stage="ResponseComplete")]) == set()


def test_falco_fixtures(falco_dir):
    for name in ("exec_pod.json", "attach_pod.json"):
        assert with_pack([json.loads((falco_dir / name).read_text())]) == {FINDING}
