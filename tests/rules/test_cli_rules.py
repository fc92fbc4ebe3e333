"""``scan --rules``, ``[rules] paths`` and ``kubeguard rules test`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "rules"
LAB = ROOT / "examples" / "lab-audit.jsonl.gz"


def kubeguard(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kubeguard.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def _rule_names(stdout: str) -> dict[str, int]:
    findings = json.loads(stdout)["findings"]
    return {f["customDetectionRuleName"]: f["service"]["count"] for f in findings if "customDetectionRuleName" in f}


def test_scan_with_rules_option_and_with_config_agree(tmp_path):
    by_option = kubeguard("scan", "--no-default-feeds", "-q", "-f", "json", "--rules", str(RULES), str(LAB),
                          home=tmp_path)
    assert by_option.returncode == 0, by_option.stderr
    config = tmp_path / "kubeguard.toml"
    config.write_text(f'[rules]\npaths = ["{RULES / "rbac-change-denied.yml"}"]\n')
    by_config = kubeguard("scan", "--no-default-feeds", "-q", "-f", "json", "--config", str(config),
                          "--rules", str(RULES / "secrets-read-anonymously.yml"), str(LAB), home=tmp_path)
    assert by_config.returncode == 0, by_config.stderr
    assert _rule_names(by_config.stdout) == {
        "Denied attempt to change RBAC": 1,
        "Secrets read by an unauthenticated caller": 2,
    }
    assert len(_rule_names(by_option.stdout)) == 5


def test_a_rule_that_cannot_be_loaded_stops_the_scan_with_one_line(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text((RULES / "rbac-change-denied.yml").read_text())
    bad = rules / "typo.yaml"
    bad.write_text("title: typo\nlogsource: {product: kubernetes, service: audit}\n"
                   "detection:\n  sel: {objectref.resource: pods}\n  condition: sel\n")
    result = kubeguard("scan", "--no-default-feeds", "-q", "--rules", str(rules), str(LAB), home=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and "unknown field 'objectref.resource'" in lines[0]
    assert result.stdout == ""


def test_rules_test_lists_each_matching_event(tmp_path):
    result = kubeguard("rules", "test", str(RULES / "service-account-token-from-script.yml"), str(LAB),
                       "--format", "json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    matches = document["matches"]
    assert {m["user"] for m in matches} == {"system:serviceaccount:dev:default"}
    assert sorted(m["code"] for m in matches) == [200, 403, 403]
    [finding] = document["findings"]
    assert finding["service"]["count"] == len(matches)


def test_rules_test_refuses_a_rule_for_another_log_source(tmp_path):
    rule = tmp_path / "windows.yml"
    rule.write_text("title: w\nlogsource: {product: windows, service: security}\n"
                    "detection:\n  sel: {EventID: 4624}\n  condition: sel\n")
    result = kubeguard("rules", "test", str(rule), str(LAB), home=tmp_path)
    assert result.returncode == 2
    assert "product: kubernetes, service: audit" in result.stderr and str(rule) in result.stderr
