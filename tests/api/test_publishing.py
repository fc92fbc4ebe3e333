"""Publishing: a real ``kubeguard serve`` fed the lab cluster's webhook batches sends EventBridge events to its sinks.

Every new finding and every update goes out as one ``GuardDuty Finding`` event whose ``detail`` is the finding
in wire form, exactly as GetFindings returns it; an HTTP sink retries with backoff and counts what it loses;
an ARCHIVE filter keeps the new findings it matches out of every sink.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from api.conftest import guardduty_client
from api.publishing import (
    detector_id,
    feed,
    lab_batches,
    metric,
    occurrences,
    running_receiver,
    sinks_config,
    stored_findings,
    wait_for,
    with_new_audit_ids,
)
from api.server import free_port
from kubeguard.findings.publish import HttpSink

PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
ENVELOPE_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def published_events(server, path: Path) -> list[dict[str, Any]]:
    """Wait until the JSONL sink has every visible occurrence recorded so far, and return its events."""
    sink = f"file:{path}"

    def complete() -> list[dict[str, Any]] | None:
        totals = occurrences(server)
        expected = totals.get("created", 0) + totals.get("updated", 0)
        if expected and metric(server, "kubeguard_published_total", sink=sink) == expected:
            return read_events(path)
        return None

    events = wait_for(complete, timeout=10)
    totals = occurrences(server)
    assert len(events) == totals.get("created", 0) + totals.get("updated", 0)
    return events


def without_update_fields(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding without what a later occurrence changes: updatedAt, the count and the last-seen time."""
    service = {k: v for k, v in finding["service"].items() if k not in ("count", "eventLastSeen")}
    return {**{k: v for k, v in finding.items() if k != "updatedAt"}, "service": service}


def assert_envelope(event: dict[str, Any], earliest: datetime) -> None:
    assert set(event) == ENVELOPE_KEYS
    assert event["version"] == "0"
    assert event["detail-type"] == "GuardDuty Finding"
    assert event["source"] == "aws.guardduty"
    assert event["resources"] == []
    assert event["account"] == event["detail"]["accountId"] and re.fullmatch(r"\d{12}", event["account"])
    assert event["region"] == event["detail"]["region"] and event["region"]
    assert uuid.UUID(event["id"]).version == 4
    assert TIME_FORMAT.match(event["time"]), event["time"]
    sent = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert earliest <= sent <= datetime.now(UTC) + timedelta(seconds=1)


def test_jsonl_sink_gets_each_new_finding_and_each_update_as_getfindings_returns_it(make_server, tmp_path):
    path = tmp_path / "events.jsonl"
    server = make_server(sinks_config({"type": "jsonl", "path": path}))
    earliest = datetime.now(UTC).replace(microsecond=0)
    batches = lab_batches()
    feed(server, batches)
    events = published_events(server, path)
    stored = stored_findings(server, detector_id(server))
    assert stored, "the lab scenario raised no finding"

    for event in events:
        assert_envelope(event, earliest)
    assert len({event["id"] for event in events}) == len(events)

    by_finding: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_finding.setdefault(event["detail"]["id"], []).append(event["detail"])
    # One event when a batch creates a finding, then one per batch that updates it, each with a higher
    # count (a batch's occurrences of one finding are aggregated before they are stored), ending as stored.
    assert set(by_finding) == set(stored)
    assert len(by_finding) == occurrences(server)["created"]
    for finding_id, details in by_finding.items():
        final = stored[finding_id]
        counts = [d["service"]["count"] for d in details]
        assert counts == sorted(set(counts)) and counts[-1] == final["service"]["count"]
        assert details[-1] == final
        for detail in details[:-1]:
            assert without_update_fields(detail) == without_update_fields(final)

    # The same events again with new auditIDs: every finding they raise is updated and published with a higher count.
    before = len(events)
    feed(server, [with_new_audit_ids(batch, "replay") for batch in batches])
    replayed = published_events(server, path)[before:]
    assert replayed, "replaying the lab batches updated no finding"
    assert occurrences(server)["created"] == len(by_finding), "the replay created new findings"
    stored = stored_findings(server, detector_id(server))
    last_count = {finding_id: details[-1]["service"]["count"] for finding_id, details in by_finding.items()}
    for event in replayed:
        assert_envelope(event, earliest)
        detail = event["detail"]
        assert detail["service"]["count"] > last_count[detail["id"]]
        assert detail["updatedAt"] >= by_finding[detail["id"]][-1]["updatedAt"]
        last_count[detail["id"]] = detail["service"]["count"]
        by_finding[detail["id"]].append(detail)
    for finding_id in {event["detail"]["id"] for event in replayed}:
        assert by_finding[finding_id][-1] == stored[finding_id]
        assert stored[finding_id]["service"]["count"] > by_finding[finding_id][0]["service"]["count"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the store plays no part in delivery
def test_http_sink_retries_with_backoff_and_delivers_every_event(make_server, tmp_path):
    path = tmp_path / "events.jsonl"
    with running_receiver(fail_first=2) as receiver:
        server = make_server(sinks_config({"type": "http", "url": receiver.url}, {"type": "jsonl", "path": path}))
        feed(server, lab_batches())
        events = published_events(server, path)
        delivered = wait_for(lambda: len(receiver.delivered()) == len(events) and receiver.delivered(), timeout=10)
        # Exactly the JSONL sink's events, in the same order; the first one only after two 500s.
        assert [orjson.loads(body) for body in delivered] == events
        requests = list(receiver.requests)
        assert [r.status for r in requests] == [500, 500] + [200] * len(events)
        assert requests[0].body == requests[1].body == requests[2].body
        assert {r.content_type for r in requests} == {"application/json"}
        # Backoff of 0.5 s, then 1 s (BACKOFF_BASE_SECONDS doubling), measured at the receiver.
        first_gap, second_gap = requests[1].at - requests[0].at, requests[2].at - requests[1].at
        assert 0.45 <= first_gap < 0.9 and 0.95 <= second_gap < 1.6, (first_gap, second_gap)
        sink = f"http:{receiver.url}"
        assert metric(server, "kubeguard_published_total", sink=sink) == len(events)
        assert metric(server, "kubeguard_publish_failures_total", sink=sink, reason="retries_exhausted") is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the store plays no part in a dead receiver
def test_dead_http_sink_counts_its_losses_and_ingestion_goes_on(make_server, tmp_path):
    path = tmp_path / "events.jsonl"
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    server = make_server(
        sinks_config({"type": "http", "url": url, "max_attempts": 2}, {"type": "jsonl", "path": path})
    )
    batches = lab_batches()
    first, rest = batches[:9], batches[9:]  # the first nine raise two findings, the rest the others
    feed(server, first)
    events = published_events(server, path)
    sink = f"http:{url}"
    # Each event: a refused connection, 0.5 s of backoff, a second refusal, then it is counted as lost.
    lost = wait_for(
        lambda: metric(server, "kubeguard_publish_failures_total", sink=sink, reason="retries_exhausted")
        == len(events),
        timeout=len(events) * 0.5 + 5,
    )
    assert lost and events
    assert metric(server, "kubeguard_published_total", sink=sink) is None
    # The service still takes and analyses batches while the sink is dead, and the other sink gets them.
    feed(server, rest)
    more = published_events(server, path)
    assert len(more) > len(events)
    assert {event["detail"]["id"] for event in more} == set(stored_findings(server, detector_id(server)))
    assert wait_for(
        lambda: metric(server, "kubeguard_publish_failures_total", sink=sink, reason="retries_exhausted")
        == len(more),
        timeout=len(more) * 0.5 + 5,
    )


def test_archive_filter_stores_matching_new_findings_archived_and_publishes_only_the_rest(make_server, tmp_path):
    path = tmp_path / "events.jsonl"
    server = make_server(sinks_config({"type": "jsonl", "path": path}))
    detector = detector_id(server)
    guardduty_client(server.url).create_filter(
        DetectorId=detector,
        Name="expected-privileged",
        Action="ARCHIVE",
        Rank=1,
        FindingCriteria={"Criterion": {"type": {"Eq": [PRIVILEGED]}}},
    )
    feed(server, lab_batches())
    events = published_events(server, path)
    stored = stored_findings(server, detector)
    archived = {i for i, f in stored.items() if f["service"]["archived"]}
    [suppressed] = [i for i, f in stored.items() if f["type"] == PRIVILEGED]
    assert archived == {suppressed}
    assert metric(server, "kubeguard_findings_total", type=PRIVILEGED, outcome="suppressed") == 1
    published = {event["detail"]["id"] for event in events}
    assert published == set(stored) - {suppressed}
    assert all(event["detail"]["service"]["archived"] is False for event in events)


def test_an_http_sink_is_named_without_the_credentials_in_its_url():
    # The sink name is a label on /metrics (readable with a webhook token) and appears in logs.
    sink = HttpSink("https://hook:s3cr3t@hooks.example:8443/events?token=t0ken#frag")
    assert sink.name == "http:https://hooks.example:8443/events"
    assert sink.url == "https://hook:s3cr3t@hooks.example:8443/events?token=t0ken#frag"  # still delivers there
