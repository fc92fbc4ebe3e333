"""What a user writes to name a live source, and the times they give it.

On the command line a source is ``KIND:TARGET[,key=value...]``: ``cloudwatch:/aws/eks/prod/cluster``,
``cloudwatch:my-group,cluster=prod``, ``file:/var/log/kubernetes/audit.log,cluster=lab``,
``pubsub:projects/my-project/subscriptions/gke-audit``. In the TOML
configuration the same goes in ``[[sources]]`` tables (``source = "..."`` plus optional ``cluster``,
``overlap``, ``poll``). Times are durations back from now (``90s``, ``30m``, ``1h``, ``7d``) or ISO 8601
instants.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kubeguard.audit.envelopes import eks_cluster_from_log_group

KINDS = ("cloudwatch", "file", "pubsub")
#: CloudWatch log group names: 1-512 of these characters.
LOG_GROUP = re.compile(r"[A-Za-z0-9._/#-]{1,512}")
#: A Pub/Sub subscription's full name.
SUBSCRIPTION = re.compile(r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/subscriptions/[A-Za-z][A-Za-z0-9._~%+-]{2,254}")
CLUSTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_OPTIONS = ("cluster", "overlap", "poll")

#: How far back a re-read of CloudWatch reaches, for events that arrive late.
DEFAULT_OVERLAP_SECONDS = 300.0
DEFAULT_POLL_SECONDS = 5.0


class SourceSpecError(ValueError):
    """A source, duration or time that cannot be used; the message says what is wrong."""


@dataclass(slots=True, frozen=True)
class SourceSpec:
    kind: str
    target: str
    cluster: str
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS

    @property
    def name(self) -> str:
        """The key the source's cursor is stored under: the same source resumes where it stopped."""
        return f"{self.kind}:{self.target}"


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``7d``, ``2w``, or combinations like ``1h30m``: seconds."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise SourceSpecError(f"not a duration: {text!r} (write e.g. 90s, 30m, 1h, 7d)")
    return sum(float(number) * _UNITS[unit] for number, unit in _DURATION.findall(compact))


def parse_time(text: str, *, now: float | None = None) -> int:
    """A duration back from now, or an ISO 8601 instant (UTC unless it says otherwise): epoch milliseconds."""
    current = time.time() if now is None else now
    try:
        return int((current - parse_duration(text)) * 1000)
    except SourceSpecError:
        pass
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise SourceSpecError(f"not a duration or ISO 8601 time: {text!r}") from exc
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return int(instant.timestamp() * 1000)


def parse_source(text: str, default_cluster: str = "default") -> SourceSpec:
    """``KIND:TARGET[,cluster=NAME][,overlap=5m][,poll=5s]``."""
    kind, separator, rest = text.partition(":")
    if not separator or kind not in KINDS:
        raise SourceSpecError(f"unknown source {text!r}: write cloudwatch:LOG_GROUP, file:PATH or pubsub:SUBSCRIPTION")
    parts = rest.split(",")
    options: dict[str, str] = {}
    while len(parts) > 1 and parts[-1].partition("=")[0].strip() in _OPTIONS and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        options[key.strip()] = value.strip()
    return build_spec(kind, ",".join(parts), options, default_cluster)


def spec_from_config(entry: Mapping[str, object], default_cluster: str = "default") -> SourceSpec:
    """One ``[[sources]]`` table: ``source = "KIND:TARGET"`` plus optional ``cluster``, ``overlap``, ``poll``."""
    unknown = sorted(set(entry) - {"source", *_OPTIONS})
    if unknown:
        raise SourceSpecError(f"[[sources]] has unknown keys: {', '.join(unknown)}")
    source = entry.get("source")
    if not isinstance(source, str):
        raise SourceSpecError('[[sources]] needs source = "cloudwatch:LOG_GROUP" or "file:PATH"')
    spec = parse_source(source, default_cluster)
    options = {key: str(entry[key]) for key in _OPTIONS if key in entry}
    return build_spec(spec.kind, spec.target, options, default_cluster) if options else spec


def build_spec(kind: str, target: str, options: Mapping[str, str], default_cluster: str) -> SourceSpec:
    if not target:
        raise SourceSpecError(f"{kind}: source needs a target")
    if kind == "cloudwatch" and not LOG_GROUP.fullmatch(target):
        raise SourceSpecError(f"not a CloudWatch log group name: {target!r}")
    if kind == "pubsub" and not SUBSCRIPTION.fullmatch(target):
        raise SourceSpecError(f"not a Pub/Sub subscription: {target!r} (write projects/PROJECT/subscriptions/NAME)")
    cluster = options.get("cluster") or (eks_cluster_from_log_group(target) if kind == "cloudwatch" else "")
    # A Pub/Sub sink carries entries that name their cluster; "" files each under its own.
    cluster = cluster or ("" if kind == "pubsub" else default_cluster)
    if cluster and not CLUSTER.fullmatch(cluster):
        raise SourceSpecError(f"cluster name {cluster!r}: use 1-100 letters, digits, '.', '_' and '-'")
    overlap = parse_duration(options["overlap"]) if "overlap" in options else DEFAULT_OVERLAP_SECONDS
    poll = parse_duration(options["poll"]) if "poll" in options else DEFAULT_POLL_SECONDS
    if poll <= 0:
        raise SourceSpecError("poll interval must be positive")
    return SourceSpec(kind=kind, target=target, cluster=cluster, overlap_seconds=overlap, poll_seconds=poll)


def collect_specs(
    cli: Iterable[str], config: Iterable[Mapping[str, object]], default_cluster: str = "default"
) -> list[SourceSpec]:
    """Sources from ``--source`` and ``[[sources]]``; the same source named twice is one source."""
    specs = [spec_from_config(entry, default_cluster) for entry in config]
    specs += [parse_source(text, default_cluster) for text in cli]
    unique: dict[str, SourceSpec] = {}
    for spec in specs:
        unique.setdefault(spec.name, spec)
    return list(unique.values())
