"""Naming sources and times; the rate budget; when a source is reported behind and caught up."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kubeguard.sources.health import SourceHealth, SourcesCollector
from kubeguard.sources.pacing import Backoff, RateBudget
from kubeguard.sources.spec import SourceSpecError, collect_specs, parse_duration, parse_source, parse_time


def test_cluster_comes_from_the_eks_log_group_unless_named():
    assert parse_source("cloudwatch:/aws/eks/prod-eu/cluster").cluster == "prod-eu"
    spec = parse_source("cloudwatch:/aws/eks/prod-eu/cluster,cluster=other,overlap=10m,poll=2s")
    assert (spec.target, spec.cluster, spec.overlap_seconds, spec.poll_seconds) == (
        "/aws/eks/prod-eu/cluster", "other", 600.0, 2.0
    )
    assert parse_source("cloudwatch:my-group", default_cluster="dflt").cluster == "dflt"
    assert parse_source("file:/var/log/a,b/audit.log,cluster=lab").target == "/var/log/a,b/audit.log"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kinesis:x", "unknown source"),
        ("cloudwatch:", "needs a target"),
        ("cloudwatch:bad group!", "not a CloudWatch log group"),
        ("cloudwatch:/aws/eks/x/cluster,cluster=no spaces", "cluster name"),
        ("file:/x,poll=0s", "poll interval"),
    ],
)
def test_bad_sources_say_what_is_wrong(text, message):
    with pytest.raises(SourceSpecError, match=message):
        parse_source(text)


def test_config_and_command_line_sources_merge_without_duplicates():
    specs = collect_specs(
        ["cloudwatch:/aws/eks/a/cluster", "file:/x.log"],
        [{"source": "cloudwatch:/aws/eks/a/cluster", "cluster": "alpha"}],
    )
    assert [(s.name, s.cluster) for s in specs] == [("cloudwatch:/aws/eks/a/cluster", "alpha"), ("file:/x.log", "default")]
    with pytest.raises(SourceSpecError, match="unknown keys: since"):
        collect_specs([], [{"source": "file:/x", "since": "1h"}])


def test_durations_and_times():
    assert parse_duration("1h30m") == 5400 and parse_duration("7d") == 604800
    assert parse_time("24h", now=100_000.0) == (100_000 - 86_400) * 1000
    assert parse_time("2026-11-30T12:00:00Z") == parse_time("2026-11-30T12:00:00")
    with pytest.raises(SourceSpecError):
        parse_time("yesterday")


def test_rate_budget_spaces_requests_after_the_burst():
    now = [0.0]
    budget = RateBudget(rate=2.0, burst=2, clock=lambda: now[0])
    assert budget._reserve() == 0.0 and budget._reserve() == 0.0
    assert budget._reserve() == pytest.approx(0.5)
    now[0] += 0.5
    assert budget._reserve() == 0.0


def test_backoff_grows_to_its_ceiling_and_resets():
    backoff = Backoff(initial=1.0, maximum=8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    assert 0.5 <= delays[0] <= 1.0 and all(4.0 <= d <= 8.0 for d in delays[4:])
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_falling_behind_and_catching_up_are_logged_once_each(caplog):
    now = [1_000.0]
    health = SourceHealth("cloudwatch:/aws/eks/x/cluster", "cloudwatch", "/aws/eks/x/cluster", "x", clock=lambda: now[0])
    health.committed({}, caught_up_ms=990_000)
    with caplog.at_level(logging.INFO, logger="kubeguard.sources.health"):
        health.check_lag()
        now[0] += 200
        health.check_lag()
        health.check_lag()
        health.committed({}, caught_up_ms=int(now[0] * 1000))
        health.check_lag()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "is behind: 210s behind" in messages[0] and "has caught up" in messages[1]


def test_health_is_exposed_as_prometheus_metrics():
    health = SourceHealth("file:/a.log", "file", "/a.log", "lab")
    health.read(5, {"not_json": 2}, 1_700_000_000_000, duplicates=1)
    health.failed("ThrottlingException: slow down", throttled=True)
    registry = CollectorRegistry()
    registry.register(SourcesCollector(lambda: [health]))
    text = generate_latest(registry).decode()
    labels = 'cluster="lab",kind="file",source="file:/a.log"'
    assert f"kubeguard_source_events_read_total{{{labels}}} 5.0" in text
    rejects = 'cluster="lab",kind="file",reason="not_json",source="file:/a.log"'
    assert f"kubeguard_source_rejects_total{{{rejects}}} 2.0" in text
    assert f"kubeguard_source_throttles_total{{{labels}}} 1.0" in text
    assert f"kubeguard_source_last_event_timestamp_seconds{{{labels}}} 1.7e+09" in text
