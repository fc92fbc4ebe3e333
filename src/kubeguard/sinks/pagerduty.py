"""PagerDuty Events API v2: trigger an alert per finding, resolve it when the finding is archived.

The dedup key is the finding id, so every later occurrence of a finding updates the same alert instead of
paging again, and archiving the finding in kubeguard resolves it. Severity maps Critical -> critical,
High -> error, Medium -> warning, Low -> info. PagerDuty answers 202; 400 means the event is invalid
(dropped and logged), 429 and 5xx are retried.
"""

from __future__ import annotations

from typing import Any

from kubeguard.findings.formats.summary import summarize
from kubeguard.sinks.delivery import Item, Renderer, SinkEnv
from kubeguard.sinks.http import JsonPoster
from kubeguard.sinks.options import PagerDutyOptions

SEVERITIES = {"Critical": "critical", "High": "error", "Medium": "warning", "Low": "info"}
MAX_SUMMARY = 1024


def pagerduty_event(item: Item, routing_key: str, renderer: Renderer) -> dict[str, Any]:
    summary = summarize(item.finding)
    if item.archived:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": summary.id}
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": summary.id,
        "payload": {
            "summary": renderer.message(item)[:MAX_SUMMARY],
            "source": summary.cluster or "kubeguard",
            "severity": SEVERITIES.get(summary.severity_label, "warning"),
            "timestamp": str(item.finding.get("updatedAt") or summary.last_seen),
            "component": summary.principal or None,
            "group": summary.cluster or None,
            "class": summary.type,
            "custom_details": renderer.document(item),
        },
        "client": "kubeguard",
    }
    event["payload"] = {key: value for key, value in event["payload"].items() if value not in (None, "")}
    if item.link:
        event["client_url"] = item.link
        event["links"] = [{"href": item.link, "text": "Open in kubeguard"}]
    return event


class PagerDutyDestination(JsonPoster):
    def __init__(self, options: PagerDutyOptions, env: SinkEnv) -> None:
        key = options.routing_key
        super().__init__(options.name or "pagerduty", options.url, options.timeout_seconds,
                         lambda item: pagerduty_event(item, key, env.renderer))
