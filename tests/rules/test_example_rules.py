"""The rules in examples/rules/ on a real API server's log and on benign simulated traffic.

Each example rule is paired with a plain-Python description of the events it is written for, read
straight from the JSON; the rule's finding must count exactly those events (one finding per principal,
``service.count`` = events), fire on nothing in the simulator's benign traffic, and leave the built-in
findings as they are without rules.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubeguard.audit.decode import decode_bytes
from kubeguard.config import RulesSettings, Settings
from kubeguard.detectors.rules.load import load_rules
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "rules"
LAB = ROOT / "examples" / "lab-audit.jsonl.gz"


def _code(e: dict[str, Any]) -> int:
    return e.get("responseStatus", {}).get("code", 0)


def _ref(e: dict[str, Any], key: str) -> str:
    return e.get("objectRef", {}).get(key, "")


DESCRIBED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "Pod sharing the host's namespaces created": lambda e: (
        e["verb"] == "create" and _ref(e, "resource") == "pods" and not _ref(e, "subresource")
        and _code(e) < 400 and "dryRun=All" not in e["requestURI"]
        and any(e.get("requestObject", {}).get("spec", {}).get(k) for k in ("hostPID", "hostIPC", "hostNetwork"))
    ),
    "Secrets read by an unauthenticated caller": lambda e: (
        e["verb"] in ("get", "list", "watch") and _ref(e, "resource") == "secrets" and 200 <= _code(e) < 300
        and (e["user"]["username"] == "system:anonymous" or "system:unauthenticated" in e["user"].get("groups", []))
    ),
    "Request made while impersonating another identity": lambda e: (
        bool(e.get("impersonatedUser", {}).get("username")) and not e["user"]["username"].startswith("system:")
    ),
    "Service account token used from a script": lambda e: (
        e["user"]["username"].startswith("system:serviceaccount:")
        and e.get("userAgent", "").startswith(("curl/", "Wget/", "python-requests/", "python-urllib3/"))
    ),
    "Denied attempt to change RBAC": lambda e: (
        e["verb"] in ("create", "update", "patch", "delete")
        and _ref(e, "resource") in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
        and e.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid"
    ),
}


def _scan(raw: bytes, settings: Settings) -> list[dict[str, Any]]:
    pipeline = Pipeline(settings, MemoryState())
    findings = FindingSet()
    for event in decode_bytes(raw).events:
        for finding in pipeline.process_event(event):
            findings.add(finding)
    return findings.values()


@pytest.fixture(scope="module")
def lab_raw() -> bytes:
    return gzip.decompress(LAB.read_bytes())


@pytest.fixture(scope="module")
def with_rules(lab_raw) -> list[dict[str, Any]]:
    return _scan(lab_raw, Settings(rules=RulesSettings(paths=[str(RULES)])))


def test_every_example_rule_is_described_here():
    assert {rule.title for rule in load_rules([RULES])} == set(DESCRIBED)


@pytest.mark.parametrize("title", sorted(DESCRIBED))
def test_example_rule_counts_exactly_the_events_it_describes(lab_raw, with_rules, title):
    records = [orjson.loads(line) for line in lab_raw.splitlines()]
    expected = Counter(
        r["user"]["username"] for r in records if r["stage"] == "ResponseComplete" and DESCRIBED[title](r)
    )
    assert expected, f"the lab log has no event for {title!r}; the test would prove nothing"
    found = [f for f in with_rules if f.get("customDetectionRuleName") == title]
    counted = Counter()
    for finding in found:
        user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
        counted[user] += finding["service"]["count"]
    assert counted == expected
    assert len(found) == len(expected)  # one finding per principal


def test_built_in_findings_are_unchanged_with_rules_loaded(lab_raw, with_rules):
    without = _scan(lab_raw, Settings())
    built_in = [f for f in with_rules if "customDetectionRuleName" not in f]

    def shape(findings):
        return sorted((f["id"], f["type"], f["severity"], f["service"]["count"]) for f in findings)

    assert shape(built_in) == shape(without)
    assert all("customDetectionRuleName" not in f for f in without)


def test_rule_finding_says_which_rule_and_why(with_rules):
    [finding] = [f for f in with_rules if f.get("customDetectionRuleName") == "Pod sharing the host's namespaces created"]
    assert finding["type"] == "PrivilegeEscalation:Kubernetes/PodSharingHostNamespaces"  # from the rule's name
    assert finding["severity"] == 8.0  # level: high
    info = orjson.loads(finding["service"]["additionalInfo"]["value"])
    assert info["customDetectionRuleName"] == finding["customDetectionRuleName"]
    assert info["mitreTechnique"] == "T1611"
    assert info["customDetectionRuleId"] == "0f6b0c1e-4d55-4a53-9d6e-3a8c4f7b2a11"
    parameters = orjson.loads(finding["service"]["action"]["kubernetesApiCallAction"]["parameters"])
    assert parameters["requestObject.spec.hostPID"] is True
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "kubernetes-admin"


@pytest.mark.parametrize("seed", [1, 2])
def test_example_rules_stay_silent_on_benign_simulated_traffic(seed):
    from kubeguard.sim import SimConfig, Simulator

    simulator = Simulator(SimConfig(seed=seed, duration=timedelta(hours=18), attacks=["none"]))
    raw = b"\n".join(orjson.dumps(event) for event in simulator.events())
    settings = Settings(rules=RulesSettings(paths=[str(RULES)]))
    settings.anomaly.enabled = False
    raised = [f for f in _scan(raw, settings) if "customDetectionRuleName" in f]
    assert raised == []
