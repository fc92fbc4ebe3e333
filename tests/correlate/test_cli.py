"""The command line as a user runs it: ``kubeguard scan`` and ``kubeguard investigate`` in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from correlate.test_detective_api import KEY, SECRET, served  # noqa: F401 - the module-scoped server fixture
from kubeguard.correlate.sequences import SEQUENCE_TYPE
from kubeguard.correlate.stage import table_order

SECRETS = "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"
PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"


def kubeguard(*args: str, home, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "COLUMNS": "200",
                   **(env or {})}
    return subprocess.run([sys.executable, "-m", "kubeguard.cli", *args], capture_output=True, text=True,
                          env=environment, timeout=120, check=False)


def test_scan_json_has_exactly_one_critical_sequence_naming_the_secrets_access_and_the_privileged_workload(
        intrusion, tmp_path):
    done = kubeguard("scan", "--no-default-feeds", "--format", "json", "--quiet", str(intrusion.log), home=tmp_path)
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)["findings"]
    (sequence,) = [f for f in findings if f["type"] == SEQUENCE_TYPE]
    assert findings[0] == sequence and sequence["severity"] == 9.0
    names = [s["name"] for s in sequence["service"]["detection"]["sequence"]["signals"]]
    assert SECRETS in names and PRIVILEGED in names
    others = sorted(f["type"] for f in findings if f["type"] != SEQUENCE_TYPE)
    assert others == sorted(f["type"] for f in intrusion.findings if f["type"] != SEQUENCE_TYPE)


def test_the_table_lists_the_sequence_first_with_its_members_under_it(intrusion):
    ordered = table_order(intrusion.findings)
    (sequence, depth), *rest = ordered
    assert sequence["type"] == SEQUENCE_TYPE and depth == 0
    members = [f for f, d in rest if d == 1]
    assert rest[: len(members)] == [(f, 1) for f in members]
    assert {f["id"] for f in members} == {
        f["id"] for f in intrusion.findings if f.get("associatedAttackSequenceArn") == sequence["arn"]}
    firsts = [f["service"]["eventFirstSeen"] for f in members]
    assert firsts == sorted(firsts)


def test_investigate_from_log_files_and_from_a_service_agree(intrusion, served, tmp_path):  # noqa: F811
    scope = ("--since", "2026-01-01T00:00:00Z", "--until", "2026-02-01T00:00:00Z")
    local = kubeguard("investigate", "erin@example.com", str(intrusion.log), "--cluster", "default", *scope,
                      "--format", "json", home=tmp_path)
    assert local.returncode == 0, local.stderr
    remote = kubeguard("investigate", "erin@example.com", "--cluster", "default", "--url", served.url, *scope,
                       "--format", "json", home=tmp_path,
                       env={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert remote.returncode == 0, remote.stderr
    from_logs, from_service = json.loads(local.stdout), json.loads(remote.stdout)
    assert from_logs["Severity"] == from_service["Severity"] == "CRITICAL"
    kinds = {i["IndicatorType"] for i in from_logs["Indicators"]}
    assert {"NEW_USER_AGENT", "NEW_ASO", "RELATED_FINDING", "TTP_OBSERVED"} <= kinds
    assert sorted(json.dumps(i, sort_keys=True) for i in from_logs["Indicators"]) == sorted(
        json.dumps(i, sort_keys=True) for i in from_service["Indicators"])


def test_investigate_without_a_cluster_is_a_usage_error(tmp_path):
    done = kubeguard("investigate", "erin@example.com", "--db", str(tmp_path / "none.db"), home=tmp_path)
    assert done.returncode == 2
    assert "--cluster" in done.stderr
