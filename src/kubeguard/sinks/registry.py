"""Build each configured sink: its destination, format, filter and worker, named uniquely and stably.

A sink's name keys its outbox, so it must not change across restarts: it is the configured ``name``, else
derived from the destination (without secrets: chat webhook paths and URL credentials are left out).
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import Engine

from kubeguard.findings.publish import Publisher, Route
from kubeguard.sinks import options as o
from kubeguard.sinks.delivery import Destination, Renderer, SinkEnv
from kubeguard.sinks.filters import SinkFilter
from kubeguard.sinks.health import HealthMetrics, SinkHealth
from kubeguard.sinks.worker import SinkWorker

#: The format each sink sends unless configured otherwise.
DEFAULT_FORMATS = {
    "stdout": "eventbridge",
    "jsonl": "eventbridge",
    "http": "eventbridge",
    "webhook": "eventbridge",
    "slack": "text",
    "teams": "text",
    "pagerduty": "guardduty",
    "splunk": "eventbridge",
    "syslog": "eventbridge",
    "eventbridge": "guardduty",
    "sns": "eventbridge",
    "sqs": "eventbridge",
    "securityhub": "asff",
    "s3": "guardduty",
}


#: Sink type -> "module:class" of its destination, imported only when configured (the AWS ones need boto3).
DESTINATIONS = {
    "stdout": "files:StdoutDestination",
    "jsonl": "files:JsonlFileDestination",
    "http": "webhook:WebhookDestination",
    "webhook": "webhook:WebhookDestination",
    "slack": "slack:SlackDestination",
    "teams": "teams:TeamsDestination",
    "pagerduty": "pagerduty:PagerDutyDestination",
    "splunk": "splunk:SplunkDestination",
    "syslog": "syslog:SyslogDestination",
    "eventbridge": "eventbridge:EventBridgeDestination",
    "sns": "sns:SnsDestination",
    "sqs": "sqs:SqsDestination",
    "securityhub": "securityhub:SecurityHubDestination",
    "s3": "s3:S3Destination",
}


def destination(options: o.SinkOptions, settings: Any) -> Destination:
    renderer = Renderer(options.format or DEFAULT_FORMATS[options.type_name], options.template)
    env = SinkEnv(renderer, getattr(settings, "region", "us-east-1"), getattr(settings, "account_id", ""))
    module, _, name = DESTINATIONS[options.type_name].partition(":")
    return getattr(importlib.import_module(f"kubeguard.sinks.{module}"), name)(options, env)


def build_route(
    engine: Engine, publisher: Publisher, options: o.SinkOptions, settings: Any, metrics: HealthMetrics
) -> Route:
    target = destination(options, settings)
    health = SinkHealth(
        name=target.name,
        type=options.type_name,
        format=options.format or DEFAULT_FORMATS[options.type_name],
        outbox_size=options.outbox_size,
        metrics=metrics,
    )
    interval = getattr(target, "interval_seconds", 0.0)
    worker = SinkWorker(engine, target, options, health, link=publisher.link, interval_seconds=interval)
    return Route(worker=worker, filter=SinkFilter(options))


def build_publisher(
    engine: Engine, sinks: list[o.SinkOptions], settings: Any, metrics: HealthMetrics, public_url: str = ""
) -> Publisher:
    publisher = Publisher(engine, public_url)
    for options in sinks:
        publisher.add(build_route(engine, publisher, options, settings, metrics))
    return publisher
