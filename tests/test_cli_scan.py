"""``kubeguard scan`` run as a user runs it: a real process, real files, stdin, exit codes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
#: The lab log's findings: its exec into kube-system was answered 400 (no kubelet), so it ran nothing.
LAB_FINDINGS = 6


def kubeguard(*args: str, stdin: bytes | None = None, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "kubeguard.cli", "scan", "--no-default-feeds", *args],
        input=stdin, capture_output=True, env=env, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def lab_log(lab_dir: Path) -> Path:
    return lab_dir / "audit.jsonl.gz"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_json_prints_exactly_the_get_findings_shape(lab_log, home):
    result = kubeguard(str(lab_log), "--format", "json", "-q", home=home)
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    assert list(document) == ["findings"]
    assert len(document["findings"]) == LAB_FINDINGS
    assert all(f["schemaVersion"] == "2.0" for f in document["findings"])


def test_jsonl_prints_one_finding_per_line(lab_log, home):
    result = kubeguard(str(lab_log), "--format", "jsonl", "-q", home=home)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == LAB_FINDINGS
    assert {json.loads(line)["type"] for line in lines} >= {PRIVILEGED}


def test_table_and_summary(lab_log, home):
    result = kubeguard(str(lab_log), home=home)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert f"{LAB_FINDINGS} findings" in out and "priv-debug" in out and "anonymous-cluster-admin" in out
    assert "1,306 events read" in err and "0 records rejected" in err
    assert "by severity: High 4, Medium 2" in err


def test_output_file(lab_log, home, tmp_path):
    target = tmp_path / "findings.json"
    result = kubeguard(str(lab_log), "--format", "json", "--output", str(target), "-q", home=home)
    assert result.returncode == 0 and result.stdout == b""
    assert len(json.loads(target.read_text())["findings"]) == LAB_FINDINGS


def test_min_severity_hides_medium_findings(lab_log, home):
    result = kubeguard(str(lab_log), "--format", "jsonl", "--min-severity", "high", "-q", home=home)
    severities = [json.loads(line)["severity"] for line in result.stdout.decode().splitlines()]
    assert severities and all(s >= 7 for s in severities) and len(severities) == 4


def test_fail_on_high_exits_3(lab_log, home):
    assert kubeguard(str(lab_log), "--format", "jsonl", "--fail-on", "high", "-q", home=home).returncode == 3
    assert kubeguard(str(lab_log), "--format", "jsonl", "--fail-on", "critical", "-q", home=home).returncode == 0


def test_missing_file_exits_2_with_a_message(home, tmp_path):
    result = kubeguard(str(tmp_path / "nope.jsonl"), home=home)
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr.decode()


def test_unknown_input_format_exits_2(lab_log, home):
    result = kubeguard(str(lab_log), "--input-format", "splunk", home=home)
    assert result.returncode == 2
    assert "unknown --input-format 'splunk'" in result.stderr.decode()


def test_stdin_and_cluster(lab_log, home):
    data = gzip.decompress(lab_log.read_bytes())
    result = kubeguard("-", "--format", "jsonl", "--cluster", "lab", "-q", stdin=data, home=home)
    findings = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(findings) == LAB_FINDINGS
    assert {f["resource"]["eksClusterDetails"]["name"] for f in findings} == {"lab"}


def test_stdin_gzip(lab_log, home):
    result = kubeguard("-", "--format", "jsonl", "-q", stdin=lab_log.read_bytes(), home=home)
    assert len(result.stdout.decode().splitlines()) == LAB_FINDINGS


def test_state_file_remembers_privileged_images_between_scans(lab_dir, home, tmp_path):
    pod = next(
        line for line in gzip.decompress((lab_dir / "audit.jsonl.gz").read_bytes()).decode().splitlines(True)
        if '"priv-debug"' in line and '"verb":"create"' in line.replace(" ", "")
        and '"resource":"pods"' in line.replace(" ", "") and "ResponseComplete" in line and '"exec"' not in line
    )
    log = tmp_path / "day1.jsonl"
    log.write_text(pod)
    state = tmp_path / "state.json"
    first = kubeguard(str(log), "--format", "jsonl", "--state", str(state), "-q", home=home)
    assert [json.loads(line)["type"] for line in first.stdout.decode().splitlines()] == [PRIVILEGED]
    assert state.exists()
    second = kubeguard(str(log), "--format", "jsonl", "--state", str(state), "-q", home=home)
    assert second.returncode == 0 and second.stdout == b""
    without_state = kubeguard(str(log), "--format", "jsonl", "-q", home=home)
    assert [json.loads(line)["type"] for line in without_state.stdout.decode().splitlines()] == [PRIVILEGED]


def test_bad_lines_are_counted_in_the_summary(home, tmp_path):
    log = tmp_path / "audit.jsonl"
    log.write_text('{"kind": 0}\nnot json\n')
    result = kubeguard(str(log), "--allow-empty", home=home)
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "2 records rejected" in err and f"{log}:1" in err and f"{log}:2" in err


def test_audit_trail_pack_adds_its_findings_and_an_unknown_pack_is_a_usage_error(lab_log, home):
    result = kubeguard(str(lab_log), "--format", "jsonl", "-q", "--pack", "audit-trail", home=home)
    extra = {json.loads(line)["type"] for line in result.stdout.decode().splitlines()}
    # The lab's admin bound cluster-admin to system:anonymous and created pods with host namespaces.
    assert {"PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound",
            "PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces"} <= extra
    bad = kubeguard(str(lab_log), "--pack", "nope", home=home)
    assert bad.returncode == 2 and "unknown detection pack 'nope'" in bad.stderr.decode()
