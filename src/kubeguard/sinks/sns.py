"""Amazon SNS ``PublishBatch``: one message per finding, with attributes subscriptions can filter on.

The message is the sink's format (the EventBridge envelope by default, what a GuardDuty -> EventBridge ->
SNS pipeline delivers); ``severity`` (Number), ``type``, ``cluster`` and ``consoleUrl`` are message
attributes, so a subscription filter policy can route without parsing the body. The subject is the text
line, cut to SNS's 100 characters.
"""

from __future__ import annotations

from typing import Any

from kubeguard.findings.formats.summary import summarize
from kubeguard.findings.formats.text import text_line
from kubeguard.sinks.aws import aws_client, call, refused
from kubeguard.sinks.delivery import Item, PartialFailure, SinkEnv
from kubeguard.sinks.options import SnsOptions

MAX_SUBJECT = 99  # SNS: "less than 100 characters"


def message_attributes(item: Item) -> dict[str, dict[str, str]]:
    summary = summarize(item.finding)
    attributes = {
        "severity": {"DataType": "Number", "StringValue": f"{summary.severity:g}"},
        "type": {"DataType": "String", "StringValue": summary.type},
        "cluster": {"DataType": "String", "StringValue": summary.cluster},
        "consoleUrl": {"DataType": "String", "StringValue": item.link},
    }
    return {key: value for key, value in attributes.items() if value["StringValue"]}


def batch_failures(response: dict[str, Any]) -> dict[int, tuple[str, bool]]:
    """SNS and SQS batch answers: ``Failed`` entries by the index in their ``Id``."""
    return {
        int(failure["Id"]): (
            f"{failure.get('Code', 'Unknown')}: {failure.get('Message', '')}",
            bool(failure.get("SenderFault")) and refused(str(failure.get("Code", ""))),
        )
        for failure in response.get("Failed", [])
    }


class SnsDestination:
    batch_size = 10

    def __init__(self, options: SnsOptions, env: SinkEnv) -> None:
        self.name = options.name or f"sns:{options.topic_arn}"
        self.topic_arn = options.topic_arn
        self.renderer = env.renderer
        self.client = aws_client("sns", options, env.region)

    def deliver(self, items: list[Item]) -> None:
        entries = [
            {
                "Id": str(index),
                "Message": self.renderer.body(item).decode(),
                "Subject": _subject(text_line(item.finding)),
                "MessageAttributes": message_attributes(item),
            }
            for index, item in enumerate(items)
        ]
        response = call(self.client.publish_batch, TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
        if failed := batch_failures(response):
            raise PartialFailure(failed)

    def close(self) -> None:
        self.client.close()


def _subject(line: str) -> str:
    printable = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in line)
    return printable[: MAX_SUBJECT - 1] + "~" if len(printable) > MAX_SUBJECT else printable


