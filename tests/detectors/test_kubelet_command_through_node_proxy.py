"""Execution:Kubernetes/KubeletCommandThroughNodeProxy."""

from __future__ import annotations

import pytest

from detectors.extension_cases import node_proxy
from detectors.scanning import scan, types

FINDING = "Execution:Kubernetes/KubeletCommandThroughNodeProxy"


@pytest.mark.parametrize(("path", "verb", "code"), [
    ("/run/kube-system/etcd-cp-1/etcd", "create", 200),
    ("/exec/kube-system/kube-proxy-x/kube-proxy?command=sh&input=1&output=1&tty=1", "get", 101),
    ("/attach/dev/web-1/app?output=1", "get", 101),
    ("/portForward/dev/db-0?port=5432", "get", 101),
])
def test_kubelet_command_endpoints(path, verb, code):
    [finding] = scan([node_proxy(path, verb=verb, code=code)])
    assert finding["type"] == FINDING
    assert finding["service"]["action"]["kubernetesApiCallAction"]["parameters"] == path.split("?")[0]


@pytest.mark.parametrize("path", ["/metrics", "/metrics/cadvisor", "/stats/summary", "/pods", "/healthz"])
def test_monitoring_reads_are_not_reported(path):
    assert types([node_proxy(path, verb="get")]) == set()


def test_a_refused_call_ran_nothing():
    assert types([node_proxy("/run/kube-system/etcd-cp-1/etcd", code=403)]) == set()
