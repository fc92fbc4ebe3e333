"""The control plane's own identities are learned but never judged."""

from __future__ import annotations

from pathlib import Path

from kubeguard.config import Settings
from kubeguard.scan import run_scan

LAB_LOG = Path(__file__).resolve().parents[2] / "examples" / "lab-audit.jsonl.gz"


def test_cluster_bootstrap_by_the_control_plane_raises_no_anomaly_even_without_learning():
    settings = Settings()
    settings.intel.use_default_feeds = False
    settings.anomaly.learning_days = 0
    settings.anomaly.min_principal_events = 5
    findings = run_scan([str(LAB_LOG)], settings).findings
    anomalous = [f for f in findings if "AnomalousBehavior" in f["type"]]
    users = {f["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] for f in anomalous}
    # The admin's first actions are new without any history, so they are judged; the bootstrap is not.
    assert "kubernetes-admin" in users
    assert not users & {"system:apiserver", "system:kube-controller-manager", "system:kube-scheduler"}
