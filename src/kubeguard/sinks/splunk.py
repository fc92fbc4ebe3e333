"""Splunk HTTP Event Collector: batches of events, ``Authorization: Splunk <token>``.

Events go to ``/services/collector/event`` as concatenated JSON objects, each with ``time`` (epoch seconds
of the finding's last update), ``host`` (the cluster), ``source``, ``sourcetype`` and optional ``index``; the
default sourcetype is the one the Splunk Add-on for AWS uses for GuardDuty events. HEC answers
``{"text":"Success","code":0}``; a batch it refuses as malformed is resent one by one so one bad event
cannot sink the others.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubeguard.findings.criteria import epoch_ms
from kubeguard.findings.formats.summary import summarize
from kubeguard.sinks.delivery import Item, Renderer, SinkEnv, one_by_one
from kubeguard.sinks.http import HttpTransport, host_only
from kubeguard.sinks.options import SplunkOptions

EVENT_PATH = "/services/collector/event"


def hec_event(item: Item, options: SplunkOptions, renderer: Renderer) -> dict[str, Any]:
    summary = summarize(item.finding)
    updated = epoch_ms(str(item.finding.get("updatedAt", "")))
    event: dict[str, Any] = {
        "host": summary.cluster or "kubeguard",
        "source": options.source,
        "sourcetype": options.sourcetype,
        "event": renderer.document(item),
    }
    if isinstance(updated, int):
        event["time"] = updated / 1000
    if options.index:
        event["index"] = options.index
    if item.link:
        event["fields"] = {"console_url": item.link}
    return event


class SplunkDestination:
    def __init__(self, options: SplunkOptions, env: SinkEnv) -> None:
        self.name = options.name or f"splunk:{host_only(options.url)}"
        base = options.url.rstrip("/")
        self.url = base if "/services/collector" in base else base + EVENT_PATH
        self.options = options
        self.renderer = env.renderer
        self.batch_size = max(1, options.batch_size)
        self.http = HttpTransport(
            options.timeout_seconds,
            {"Authorization": f"Splunk {options.token}", "Content-Type": "application/json"},
            verify=options.verify_tls,
        )

    def deliver(self, items: list[Item]) -> None:
        one_by_one(items, self._send)

    def _send(self, items: list[Item]) -> None:
        body = b"".join(orjson.dumps(hec_event(item, self.options, self.renderer)) for item in items)
        self.http.post(self.url, body)

    def close(self) -> None:
        self.http.close()
