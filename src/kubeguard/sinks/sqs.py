"""Amazon SQS ``SendMessageBatch``: one message per finding, attributes as for SNS.

A FIFO queue (``.fifo``) gets the finding id as deduplication id and the cluster as message group, so
updates to one finding keep their order and a retried batch is not delivered twice within SQS's window.
"""

from __future__ import annotations

from typing import Any

from kubeguard.findings.formats.summary import summarize
from kubeguard.sinks.aws import aws_client, call
from kubeguard.sinks.delivery import Item, PartialFailure, SinkEnv
from kubeguard.sinks.options import SqsOptions
from kubeguard.sinks.sns import batch_failures, message_attributes


class SqsDestination:
    batch_size = 10

    def __init__(self, options: SqsOptions, env: SinkEnv) -> None:
        self.name = options.name or f"sqs:{options.queue_url.rsplit('/', 1)[-1]}"
        self.queue_url = options.queue_url
        self.fifo = options.queue_url.endswith(".fifo")
        self.renderer = env.renderer
        self.client = aws_client("sqs", options, env.region)

    def entry(self, index: int, item: Item) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": str(index),
            "MessageBody": self.renderer.body(item).decode(),
            "MessageAttributes": message_attributes(item),
        }
        if self.fifo:
            summary = summarize(item.finding)
            entry["MessageGroupId"] = summary.cluster or "kubeguard"
            entry["MessageDeduplicationId"] = f"{summary.id}-{item.finding.get('updatedAt', '')}"[:128]
        return entry

    def deliver(self, items: list[Item]) -> None:
        entries = [self.entry(index, item) for index, item in enumerate(items)]
        response = call(self.client.send_message_batch, QueueUrl=self.queue_url, Entries=entries)
        if failed := batch_failures(response):
            raise PartialFailure(failed)

    def close(self) -> None:
        self.client.close()
