"""``[[serve.sinks]]``: one table per destination, told apart by ``type``.

Every sink shares the delivery settings (outbox bound, retries, backoff) and the filters (minimum severity,
types, clusters, a GuardDuty ``FindingCriteria`` criterion); each type adds what its destination needs.
Unknown keys are refused at start-up, and so is a sink that could only lose every event (no URL, no
queue...). Secrets (webhook URLs, routing keys, tokens, HMAC keys) can be given as ``env:NAME`` to read them
from the environment instead of the file.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import msgspec

from kubeguard.findings.criteria import CriteriaError, validate
from kubeguard.findings.formats import FORMATS
from kubeguard.severity import parse_threshold

DAY = 24 * 3600


class SinkOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """What every sink has: a name, a format, filters, and how hard to try."""

    name: str = ""
    format: str = ""
    #: Lowest severity sent: ``low``, ``medium``, ``high``, ``critical`` or a number 0-10.
    min_severity: str = ""
    #: Finding types sent (exact names, or a prefix ending in ``*``); empty sends every type.
    types: list[str] = []
    clusters: list[str] = []
    #: A GuardDuty FindingCriteria ``criterion`` map (``{"service.count" = {gte = 5}}``).
    criteria: dict[str, dict[str, Any]] = {}
    #: Also send a finding when it is archived (PagerDuty resolves its incident then).
    send_archived: bool = False
    #: ``string.Template`` text for human-facing messages: ${type} ${severity_label} ${cluster} ${link}...
    template: str = ""
    #: Undelivered events kept in the store for this sink; what does not fit is dropped and counted.
    outbox_size: int = 100_000
    #: The name ``outbox_size`` had before the outbox was durable; still read so old configurations work.
    queue_size: int | None = None
    #: Give up on an event after this many attempts (0: keep trying until ``max_age_seconds``).
    max_attempts: int = 0
    max_age_seconds: int = 7 * DAY
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.queue_size is not None:
            self.outbox_size = self.queue_size
        if self.format and self.format not in FORMATS:
            raise ValueError(f"sink {self.type_name}: unknown format {self.format!r}; choose {', '.join(FORMATS)}")
        if self.min_severity:
            parse_threshold(self.min_severity)
        try:
            self.criteria = validate(self.criteria, allow_wildcards=True)
        except CriteriaError as error:
            raise ValueError(f"sink {self.type_name}: {error}") from error
        if self.outbox_size <= 0 or self.max_attempts < 0 or self.max_age_seconds <= 0:
            raise ValueError(f"sink {self.type_name}: outbox_size and max_age_seconds must be positive")
        if self.backoff_seconds <= 0 or self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError(f"sink {self.type_name}: need 0 < backoff_seconds <= max_backoff_seconds")

    @property
    def type_name(self) -> str:
        return type(self).__struct_config__.tag  # type: ignore[return-value]


def secret(value: str) -> str:
    """``env:NAME`` reads the environment variable NAME (start-up fails if it is unset)."""
    if value.startswith("env:"):
        variable = value[4:]
        if variable not in os.environ:
            raise ValueError(f"environment variable {variable} is not set")
        return os.environ[variable]
    return value


def _url(kind: str, url: str) -> str:
    """The sink's URL (``env:NAME`` resolved), refused unless it is http(s)."""
    url = secret(url)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"a {kind} sink needs a url starting with http:// or https://")
    return url


class StdoutOptions(SinkOptions, tag="stdout"):
    pass


class JsonlOptions(SinkOptions, tag="jsonl"):
    path: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            raise ValueError("a jsonl sink needs a path")


class WebhookOptions(SinkOptions, tag="webhook"):
    url: str = ""
    headers: dict[str, str] = {}
    #: Signs each body: ``X-Kubeguard-Signature: sha256=HMAC(secret, "{timestamp}.{body}")``.
    hmac_secret: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.url = _url(self.type_name, self.url)
        self.hmac_secret = secret(self.hmac_secret)


class HttpOptions(WebhookOptions, tag="http"):
    """The original name of the generic webhook sink, kept so existing configurations work."""


class SlackOptions(SinkOptions, tag="slack"):
    url: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.url = _url("slack", self.url)


class TeamsOptions(SinkOptions, tag="teams"):
    url: str = ""
    #: ``adaptive`` (Workflows webhooks) or ``messagecard`` (Office 365 connector webhooks).
    card: Literal["adaptive", "messagecard"] = "adaptive"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.url = _url("teams", self.url)


class PagerDutyOptions(SinkOptions, tag="pagerduty"):
    routing_key: str = ""
    url: str = "https://events.pagerduty.com/v2/enqueue"
    send_archived: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.routing_key = secret(self.routing_key)
        if not self.routing_key:
            raise ValueError("a pagerduty sink needs a routing_key (the Events API v2 integration key)")
        self.url = _url("pagerduty", self.url)


class SplunkOptions(SinkOptions, tag="splunk"):
    #: The HEC base (``https://splunk:8088``) or the full ``.../services/collector/event`` URL.
    url: str = ""
    token: str = ""
    index: str = ""
    source: str = "kubeguard"
    sourcetype: str = "aws:cloudwatch:guardduty"
    verify_tls: bool = True
    batch_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        self.token = secret(self.token)
        self.url = _url("splunk", self.url)
        if not self.token:
            raise ValueError("a splunk sink needs the HEC token")


class SyslogOptions(SinkOptions, tag="syslog"):
    host: str = "127.0.0.1"
    port: int = 514
    protocol: Literal["udp", "tcp", "tls"] = "udp"
    facility: str = "local0"
    app_name: str = "kubeguard"
    #: CA bundle that verifies the server's certificate (``tls``); empty uses the system's.
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    #: Longest message sent over UDP; longer ones are cut (RFC 5426 asks for at least 480, 2048 is common).
    max_udp_bytes: int = 8192


class AwsOptions(SinkOptions):
    """Where the AWS client points: credentials come from boto3's standard chain (env, profile, role)."""

    region: str = ""
    endpoint_url: str = ""
    profile: str = ""


class EventBridgeOptions(AwsOptions, tag="eventbridge"):
    event_bus: str = "default"
    #: EventBridge refuses ``aws.*`` sources from PutEvents, so rules match ``kubeguard`` instead.
    source: str = "kubeguard"
    detail_type: str = "GuardDuty Finding"


class SnsOptions(AwsOptions, tag="sns"):
    topic_arn: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.topic_arn:
            raise ValueError("an sns sink needs a topic_arn")


class SqsOptions(AwsOptions, tag="sqs"):
    queue_url: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.queue_url:
            raise ValueError("an sqs sink needs a queue_url")


class SecurityHubOptions(AwsOptions, tag="securityhub"):
    #: Archived findings are imported too, as RecordState ARCHIVED / Workflow RESOLVED.
    send_archived: bool = True


class S3Options(AwsOptions, tag="s3"):
    bucket: str = ""
    #: Key prefix before GuardDuty's ``AWSLogs/{account}/GuardDuty/{region}/YYYY/MM/DD/``.
    prefix: str = ""
    kms_key_arn: str = ""
    #: At most one object per interval: the first finding after a quiet interval goes out at once, later
    #: ones wait for the interval to end and share an object.
    interval_seconds: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.bucket:
            raise ValueError("an s3 sink needs a bucket")
        if self.interval_seconds <= 0:
            raise ValueError("an s3 sink's interval_seconds must be positive")


AnySinkOptions = (
    StdoutOptions
    | JsonlOptions
    | WebhookOptions
    | HttpOptions
    | SlackOptions
    | TeamsOptions
    | PagerDutyOptions
    | SplunkOptions
    | SyslogOptions
    | EventBridgeOptions
    | SnsOptions
    | SqsOptions
    | SecurityHubOptions
    | S3Options
)
