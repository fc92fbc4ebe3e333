"""``kubeguard scan --source``: the live readers used once over an interval of history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from kubeguard.audit.event import AuditEvent
from kubeguard.sources.health import SourceHealth
from kubeguard.sources.pacing import RateBudget
from kubeguard.sources.spec import SourceSpec, SourceSpecError, build_spec, parse_source, parse_time


class SourceScan:
    """Events of every ``--source`` between ``since`` and ``until``; ``file:`` sources become paths."""

    def __init__(self, sources: Sequence[str], since: str, until: str | None, cluster: str | None) -> None:
        self.start_ms = parse_time(since)
        self.end_ms = parse_time(until) if until else None
        if self.end_ms is not None and self.end_ms < self.start_ms:
            raise SourceSpecError(f"--until {until} is before --since {since}")
        self.specs: list[SourceSpec] = []
        self.paths: list[str] = []
        for text in sources:
            spec = parse_source(text)
            if cluster:
                spec = build_spec(spec.kind, spec.target, {"cluster": cluster}, cluster)
            if spec.kind == "file":
                self.paths.append(spec.target)
            elif spec.kind == "pubsub":
                raise SourceSpecError("a Pub/Sub subscription has no history to scan: use it with kubeguard serve")
            else:
                self.specs.append(spec)
        self.health = [SourceHealth(spec.name, spec.kind, spec.target, spec.cluster) for spec in self.specs]

    def events(self) -> Iterator[AuditEvent]:
        from kubeguard.sources.cloudwatch import logs_client, read_range

        budget = RateBudget()
        readers = [
            read_range(spec, self.start_ms, self.end_ms, client=logs_client(), budget=budget, health=health)
            for spec, health in zip(self.specs, self.health, strict=True)
        ]
        return itertools.chain.from_iterable(readers)

    def summary(self) -> list[str]:
        """One line per CloudWatch source: what it read, rejected and retried."""
        lines = []
        for health in self.health:
            snap = health.snapshot()
            rejects = ", ".join(f"{reason} {count}" for reason, count in sorted(snap["rejects"].items())) or "none"
            lines.append(
                f"{health.name} (cluster {health.cluster}): {snap['eventsRead']:,} events, rejects: {rejects}, "
                f"{snap['duplicatesDropped']} duplicates dropped, {snap['throttles']} throttled, "
                f"{snap['errors']} errors"
            )
        return lines
