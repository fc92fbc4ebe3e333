"""Build each configured sink: its destination, format, filter and worker, named uniquely and stably.

A sink's name keys its outbox, so it must not change across restarts: it is the configured ``name``, else
derived from the destination (without secrets: chat webhook paths and URL credentials are left out).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from kubeguard.findings.publish import Publisher, Route
from kubeguard.sinks import options as o
from kubeguard.sinks.delivery import Destination, Renderer
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


def destination(options: o.SinkOptions, settings: Any, name: str) -> Destination:
    renderer = Renderer(options.format or DEFAULT_FORMATS[options.type_name], options.template)
    region = getattr(settings, "region", "us-east-1")
    if isinstance(options, o.StdoutOptions):
        from kubeguard.sinks.files import StdoutDestination

        return StdoutDestination(renderer, name or "stdout")
    if isinstance(options, o.JsonlOptions):
        from kubeguard.sinks.files import JsonlFileDestination

        return JsonlFileDestination(options.path, renderer, name)
    if isinstance(options, o.WebhookOptions):
        from kubeguard.sinks.webhook import WebhookDestination

        return WebhookDestination(options, renderer, name)
    if isinstance(options, o.SlackOptions):
        from kubeguard.sinks.slack import SlackDestination

        return SlackDestination(options, renderer, name)
    if isinstance(options, o.TeamsOptions):
        from kubeguard.sinks.teams import TeamsDestination

        return TeamsDestination(options, renderer, name)
    if isinstance(options, o.PagerDutyOptions):
        from kubeguard.sinks.pagerduty import PagerDutyDestination

        return PagerDutyDestination(options, renderer, name)
    if isinstance(options, o.SplunkOptions):
        from kubeguard.sinks.splunk import SplunkDestination

        return SplunkDestination(options, renderer, name)
    if isinstance(options, o.SyslogOptions):
        from kubeguard.sinks.syslog import SyslogDestination

        return SyslogDestination(options, renderer, name)
    if isinstance(options, o.EventBridgeOptions):
        from kubeguard.sinks.eventbridge import EventBridgeDestination

        return EventBridgeDestination(options, renderer, region, name)
    if isinstance(options, o.SnsOptions):
        from kubeguard.sinks.sns import SnsDestination

        return SnsDestination(options, renderer, region, name)
    if isinstance(options, o.SqsOptions):
        from kubeguard.sinks.sqs import SqsDestination

        return SqsDestination(options, renderer, region, name)
    if isinstance(options, o.SecurityHubOptions):
        from kubeguard.sinks.securityhub import SecurityHubDestination

        return SecurityHubDestination(options, region, name)
    if isinstance(options, o.S3Options):
        from kubeguard.sinks.s3 import S3Destination

        return S3Destination(options, renderer, region, getattr(settings, "account_id", ""), name)
    raise ValueError(f"no destination for sink type {options.type_name!r}")


def build_route(
    engine: Engine, publisher: Publisher, options: o.SinkOptions, settings: Any, metrics: HealthMetrics,
    name: str = "",
) -> Route:
    target = destination(options, settings, name or options.name)
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
