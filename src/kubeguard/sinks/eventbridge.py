"""Amazon EventBridge ``PutEvents``: each finding is an event on the configured bus.

The event carries GuardDuty's ``detail-type`` (``GuardDuty Finding``) and the finding as ``Detail``, so
rules written for GuardDuty work once their ``source`` says ``kubeguard`` (EventBridge refuses the
``aws.`` prefix from PutEvents). The console link is the event's one ``Resources`` entry. Up to 10
entries per call; entries the service fails are retried or dropped one by one by their error code.
"""

from __future__ import annotations

from typing import Any

from kubeguard.sinks.aws import aws_client, call, refused
from kubeguard.sinks.delivery import Item, PartialFailure, SinkEnv
from kubeguard.sinks.options import EventBridgeOptions


class EventBridgeDestination:
    batch_size = 10

    def __init__(self, options: EventBridgeOptions, env: SinkEnv) -> None:
        self.name = options.name or f"eventbridge:{options.event_bus}"
        self.options = options
        self.renderer = env.renderer
        self.client = aws_client("events", options, env.region)

    def entry(self, item: Item) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Source": self.options.source,
            "DetailType": self.options.detail_type,
            "Detail": self.renderer.body(item).decode(),
            "EventBusName": self.options.event_bus,
        }
        if item.link:
            entry["Resources"] = [item.link]
        return entry

    def deliver(self, items: list[Item]) -> None:
        response = call(self.client.put_events, Entries=[self.entry(item) for item in items])
        if response.get("FailedEntryCount"):
            failed = {
                index: (f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}", refused(result["ErrorCode"]))
                for index, result in enumerate(response.get("Entries", []))
                if result.get("ErrorCode")
            }
            raise PartialFailure(failed)

    def close(self) -> None:
        self.client.close()
