"""Chat, paging, webhook and Splunk sinks of a real ``kubeguard serve``, against a local HTTP receiver.

The receiver answers as each service documents (Slack ``ok``, PagerDuty 202 with a status, Splunk HEC
``{"text":"Success","code":0}``) and records every request; each test checks the exact payload shape the
service documents, the per-sink filters, the console deep link, and the delivery counters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import orjson
import pytest
from api.conftest import guardduty_client
from api.publishing import (
    Receiver,
    detector_id,
    feed,
    lab_batches,
    metric,
    occurrences,
    running_receiver,
    sinks_config,
    stored_findings,
    wait_for,
)
from api.server import free_port

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # delivery does not depend on the store

PUBLIC_URL = "https://kubeguard.example.com"
SLACK_COLOURS = {"Critical": "#8B0000", "High": "#D62728", "Medium": "#FF9900", "Low": "#2E86C1"}
PD_SEVERITY = {"Critical": "critical", "High": "error", "Medium": "warning", "Low": "info"}
ANSWERS = {
    "/slack": (200, b"ok"),
    "/teams": (200, b"1"),
    "/pagerduty": (202, b'{"status":"success","message":"Event processed"}'),
    "/services/collector/event": (200, b'{"text":"Success","code":0}'),
}


def label(severity: float) -> str:
    return "Critical" if severity >= 9 else "High" if severity >= 7 else "Medium" if severity >= 4 else "Low"


def link(finding_id: str) -> str:
    return f"{PUBLIC_URL}/console/findings/{finding_id}"


def jsonl_events(path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def all_published(server, path, before: int = 0) -> list[dict[str, Any]]:
    """Every occurrence, as the reference JSONL sink wrote it, once it has all of them (``before``: those
    written before the server was restarted, which its counters no longer include)."""

    def complete():
        totals = occurrences(server)
        expected = before + totals.get("created", 0) + totals.get("updated", 0)
        events = jsonl_events(path)
        return events if expected and len(events) == expected else None

    return wait_for(complete, timeout=20)


def sink_health(server) -> dict[str, dict[str, Any]]:
    return {sink["name"]: sink for sink in httpx.get(f"{server.url}/api/sinks", timeout=5).json()["sinks"]}


def splunk_events(body: bytes) -> list[dict[str, Any]]:
    """HEC bodies are JSON objects one after another, as Splunk's raw_decode reads them."""
    decoder, text, events, at = json.JSONDecoder(), body.decode(), [], 0
    while at < len(text):
        event, at = decoder.raw_decode(text, at)
        events.append(event)
        while at < len(text) and text[at].isspace():
            at += 1
    return events


def test_chat_paging_webhook_and_splunk_payloads(make_server, tmp_path):
    reference = tmp_path / "all.jsonl"
    with running_receiver(answers=ANSWERS) as receiver:
        base = receiver.base
        config = sinks_config(
            {"type": "jsonl", "path": reference, "format": "guardduty"},
            {"type": "slack", "url": f"{base}/slack", "min_severity": "high"},
            {"type": "teams", "url": f"{base}/teams", "types": ["PrivilegeEscalation:*"]},
            {"type": "pagerduty", "url": f"{base}/pagerduty", "routing_key": "R0UT1NGKEY0000000000000000000000"},
            {"type": "webhook", "url": f"{base}/hook", "format": "ocsf", "hmac_secret": "env:TEST_HMAC",
             "criteria": {"service.count": {"gte": 2}}},
            {"type": "splunk", "url": base, "token": "hec-token", "index": "security", "clusters": ["lab"]},
            serve={"public_url": PUBLIC_URL},
        )
        server = make_server(config, env={"TEST_HMAC": "hmac-secret"})
        feed(server, lab_batches())
        events = all_published(server, reference)
        ids = {e["id"] for e in events}
        high = [e for e in events if e["severity"] >= 7]
        privileged = [e for e in events if e["type"].startswith("PrivilegeEscalation:")]
        repeated = [e for e in events if e["service"]["count"] >= 2]
        assert high and privileged and repeated and len(high) < len(events)  # the filters do filter

        wait_for(lambda: len(receiver.accepted("/slack")) == len(high), timeout=15)
        for request, finding in zip(receiver.accepted("/slack"), high, strict=True):
            message = orjson.loads(request.body)
            assert request.content_type == "application/json"
            assert set(message) == {"text", "attachments"} and finding["type"] in message["text"]
            [attachment] = message["attachments"]
            assert attachment["color"] == SLACK_COLOURS[label(finding["severity"])]
            heading, fields, actions = attachment["blocks"]
            assert heading["type"] == "section" and heading["text"]["type"] == "mrkdwn"
            assert heading["text"]["text"].startswith(f"*<{link(finding['id'])}|")
            assert fields["fields"][0]["text"].startswith("*Severity*\n")
            assert len(fields["fields"]) <= 10
            assert actions["elements"][0]["url"] == link(finding["id"])

        wait_for(lambda: len(receiver.accepted("/teams")) == len(privileged), timeout=15)
        for request, finding in zip(receiver.accepted("/teams"), privileged, strict=True):
            message = orjson.loads(request.body)
            assert message["type"] == "message"
            [attachment] = message["attachments"]
            assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
            card = attachment["content"]
            assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
            assert card["body"][0]["style"] in ("attention", "warning", "accent")
            assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in kubeguard", "url": link(finding["id"])}]

        wait_for(lambda: len(receiver.accepted("/pagerduty")) == len(events), timeout=15)
        for request, finding in zip(receiver.accepted("/pagerduty"), events, strict=True):
            event = orjson.loads(request.body)
            assert event["routing_key"] == "R0UT1NGKEY0000000000000000000000"
            assert (event["event_action"], event["dedup_key"]) == ("trigger", finding["id"])
            payload = event["payload"]
            assert payload["severity"] == PD_SEVERITY[label(finding["severity"])]
            assert payload["class"] == finding["type"] and payload["source"] == "lab"
            assert 0 < len(payload["summary"]) <= 1024 and payload["timestamp"] == finding["updatedAt"]
            assert payload["custom_details"] == finding
            assert event["links"] == [{"href": link(finding["id"]), "text": "Open in kubeguard"}]

        wait_for(lambda: len(receiver.accepted("/hook")) == len(repeated), timeout=15)
        for request, finding in zip(receiver.accepted("/hook"), repeated, strict=True):
            stamp = request.headers["X-Kubeguard-Timestamp"]
            expected = hmac.new(b"hmac-secret", stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
            assert request.headers["X-Kubeguard-Signature"] == f"sha256={expected}"
            assert request.headers["X-Kubeguard-Console-Url"] == link(finding["id"])
            ocsf = orjson.loads(request.body)
            assert (ocsf["class_uid"], ocsf["finding_info"]["uid"]) == (2004, finding["id"])

        def splunk_received():
            got = [e for r in receiver.accepted("/services/collector/event") for e in splunk_events(r.body)]
            return got if len(got) == len(events) else None

        hec = wait_for(splunk_received, timeout=15)
        assert {r.headers["Authorization"] for r in receiver.accepted("/services/collector/event")} == {"Splunk hec-token"}
        for event, finding in zip(hec, events, strict=True):
            assert (event["index"], event["sourcetype"], event["host"]) == ("security", "aws:cloudwatch:guardduty", "lab")
            assert event["event"]["detail"] == finding and event["fields"] == {"console_url": link(finding["id"])}
            assert isinstance(event["time"], float)

        # Archiving a finding resolves its PagerDuty alert (and only PagerDuty hears of it).
        target = high[0]["id"]
        guardduty_client(server.url).archive_findings(DetectorId=detector_id(server), FindingIds=[target])
        wait_for(lambda: len(receiver.accepted("/pagerduty")) == len(events) + 1, timeout=10)
        resolve = orjson.loads(receiver.accepted("/pagerduty")[-1].body)
        assert resolve == {"routing_key": "R0UT1NGKEY0000000000000000000000", "event_action": "resolve",
                           "dedup_key": target}
        health = sink_health(server)
        expected = {"slack:" + base: len(high), "teams:" + base: len(privileged), "pagerduty": len(events) + 1,
                    f"http:{base}/hook": len(repeated), "splunk:" + base: len(events)}
        for name, count in expected.items():
            assert (health[name]["delivered"], health[name]["droppedTotal"], health[name]["outboxDepth"]) == (count, 0, 0)
            assert metric(server, "kubeguard_sink_delivered_total", sink=name) == count
        assert len(jsonl_events(reference)) == len(events)  # the archive went to no other sink
        assert ids == set(stored_findings(server, detector_id(server)))


def test_a_webhook_down_across_a_restart_loses_nothing_and_keeps_order(make_server, tmp_path):
    reference = tmp_path / "all.jsonl"
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    config = sinks_config(
        {"type": "jsonl", "path": reference, "format": "guardduty"},
        {"type": "webhook", "url": url, "format": "guardduty", "max_backoff_seconds": 0.5},
    )
    server = make_server(config)
    batches = lab_batches()
    feed(server, batches[: len(batches) // 2])
    first = all_published(server, reference)
    sink = f"http:{url}"
    failing = wait_for(lambda: (h := sink_health(server)[sink])["retried"] >= 2 and h, timeout=10)
    assert failing["state"] == "failing" and failing["delivered"] == 0 and failing["outboxDepth"] == len(first)
    assert "ConnectError" in failing["lastError"] or "refused" in failing["lastError"].lower()
    assert metric(server, "kubeguard_sink_outbox_depth", sink=sink) == len(first)
    assert metric(server, "kubeguard_sink_retried_total", sink=sink) >= 2
    assert metric(server, "kubeguard_sink_delivered_total", sink=sink) is None
    assert "delivery failed" in (tmp_path / "server.log").read_text()  # the reason is in the log
    server.kill()  # the outbox is in the store: a crash while the destination is down loses nothing
    server.start()
    feed(server, batches[len(batches) // 2 :])
    receiver = Receiver()
    with running_receiver(port=port, receiver=receiver):
        everything = all_published(server, reference, before=len(first))
        delivered = wait_for(
            lambda: got if len(got := receiver.delivered("/hook")) == len(everything) else None, timeout=20
        )
        assert len(everything) > len(first)
        assert [orjson.loads(body) for body in delivered] == everything  # each occurrence once, in order
        health = wait_for(lambda: (h := sink_health(server)[sink])["outboxDepth"] == 0 and h, timeout=5)
        assert health["delivered"] == len(everything) and health["droppedTotal"] == 0 and health["state"] == "ok"
