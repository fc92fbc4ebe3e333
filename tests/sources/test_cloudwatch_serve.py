"""``kubeguard serve`` with a CloudWatch source, killed with SIGKILL and restarted: findings equal a scan.

The lab's audit log is laid into an EKS-shaped log group in three parts: the first before the service
starts, the second while it runs, the third while it is dead (its first events in the very millisecond of
the last event read). The emulator is reached only through the standard ``AWS_*`` environment, via a proxy
that throttles and pads pages with empty ones. After the restart every event must have been spooled once,
and the stored findings must equal an offline ``scan`` of the same events: types, cluster, and counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from api.server import Server

from kubeguard.config import Settings
from kubeguard.scan import run_scan
from sources.conftest import LAB_LOG


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _source_health(server: Server) -> dict:
    sources = httpx.get(f"{server.url}/api/sources", timeout=5).json()["sources"]
    assert len(sources) == 1
    return sources[0]


@pytest.fixture
def lab_group(logs):
    name = f"lab{time.time_ns() % 10**8}"
    group = f"/aws/eks/{name}/cluster"
    logs.create_log_group(logGroupName=group)
    return name, group


def _put(logs, group: str, stream: str, lines: list[str], stamps: list[int]) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    for start in range(0, len(lines), 500):
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": ts, "message": m} for ts, m in zip(stamps[start : start + 500], lines[start : start + 500], strict=True)],
        )


def _lay(logs, group: str, lines: list[str], stamps: list[int]) -> None:
    """Like EKS: audit events spread over two audit streams, plus plain API-server lines elsewhere."""
    _put(logs, group, "kube-apiserver-audit-1111", lines[0::2], stamps[0::2])
    _put(logs, group, "kube-apiserver-audit-2222", lines[1::2], stamps[1::2])
    _put(logs, group, "kube-apiserver-3333", ["I1130 plain log line"], [stamps[0]])


def test_sigkill_and_restart_give_exactly_the_findings_of_a_scan(tmp_path, logs, lab_group, lab_lines, aws_env, proxy):
    cluster, group = lab_group
    now = int(time.time() * 1000)
    first, second = int(len(lab_lines) * 0.6), int(len(lab_lines) * 0.8)
    stamps = [now - 20 * 60_000 + i * 400 for i in range(len(lab_lines))]
    # The first events laid while the service is down share the millisecond of the last one it read.
    for i in range(second, second + 4):
        stamps[i] = stamps[second - 1]
    _lay(logs, group, lab_lines[:first], stamps[:first])

    proxy.empty_pages = True
    proxy.throttle_next = 2
    args = ["--source", f"cloudwatch:{group},poll=0.3s", "--since", "1h"]
    server = Server(f"sqlite:///{tmp_path / 'kg.db'}", tmp_path, env=aws_env, args=args).start()
    try:
        _wait(lambda: _source_health(server)["eventsRead"] >= first, 60, "the backlog")
        _lay(logs, group, lab_lines[first:second], stamps[first:second])
        _wait(lambda: _source_health(server)["eventsRead"] >= second, 60, "live events")
        # Killed while the source keeps sweeping (every 0.3 s, through throttles and empty pages), but not
        # while the drainer is inside a batch: detector state committed apart from its batch's findings is
        # the spool drainer's gap (the one-transaction batch processor closes it), not this source's.
        _wait(lambda: httpx.get(f"{server.url}/api/spool").json()["batches_pending"] == 0, 60, "the drain")
        server.kill()

        _lay(logs, group, lab_lines[second:], stamps[second:])
        server.start()
        _wait(lambda: httpx.get(f"{server.url}/api/spool").json()["events"] >= len(lab_lines), 60, "all events")
        health = _source_health(server)
        metrics = httpx.get(f"{server.url}/metrics").text
        totals = server.wait_drained()
        stored = httpx.get(f"{server.url}/api/findings", params={"limit": 1000}).json()["findings"]
    finally:
        server.stop()

    assert totals["events"] == len(lab_lines), "an event was spooled twice"
    assert health["cluster"] == cluster and health["kind"] == "cloudwatch"
    # The plain API-server lines are counted as such (how many fell after the restart depends on the kill).
    assert set(health["rejects"]) == {"not_audit_stream"}
    assert proxy.throttled == 2 and proxy.empty_served > 0
    assert f'kubeguard_source_events_read_total{{cluster="{cluster}",kind="cloudwatch"' in metrics

    expected = run_scan([str(LAB_LOG)], Settings(), cluster=cluster).findings
    assert expected, "the lab log raises findings"

    def summary(findings: list[dict]) -> list[tuple[str, str, int]]:
        return sorted(
            (f["type"], f["resource"]["eksClusterDetails"]["name"], f["service"]["count"]) for f in findings
        )

    assert summary(stored) == summary(expected)
    assert {f["id"] for f in stored} == {f["id"] for f in expected}

    # The same history read once by `kubeguard scan --source` gives the same findings.
    scanned = subprocess.run(
        [sys.executable, "-m", "kubeguard.cli", "scan", "--source", f"cloudwatch:{group}", "--since", "1h", "-f", "json"],
        capture_output=True,
        env={**os.environ, **aws_env},
        timeout=120,
        check=True,
    )
    assert summary(json.loads(scanned.stdout)["findings"]) == summary(expected)
    assert "not_audit_stream 3" in scanned.stderr.decode()


def test_an_unknown_source_kind_stops_serve_with_a_usage_error(tmp_path, aws_env):
    bad = subprocess.run(
        [sys.executable, "-m", "kubeguard.cli", "serve", "--db", str(tmp_path / "x.db"), "--source", "kinesis:foo"],
        capture_output=True,
        env={**os.environ, **aws_env},
        timeout=60,
    )
    assert bad.returncode == 2 and b"unknown source 'kinesis:foo'" in bad.stderr
