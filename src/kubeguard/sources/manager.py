"""Build the live sources ``kubeguard serve`` was given and run them beside the webhook."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from kubeguard.sources.cloudwatch import CloudWatchSource, logs_client
from kubeguard.sources.health import SourceHealth, SourcesCollector
from kubeguard.sources.logfile import LogFileSource
from kubeguard.sources.pacing import RateBudget
from kubeguard.sources.spec import SourceSpec
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store.spool import Spool

log = logging.getLogger(__name__)


class SourceManager:
    """Owns every source of one service; CloudWatch sources share one request budget."""

    def __init__(
        self,
        specs: Sequence[SourceSpec],
        engine: Engine,
        spool: Spool,
        *,
        since_ms: int,
        wake: Callable[[], None] | None = None,
        budget: RateBudget | None = None,
        client_factory: Callable[[], Any] = logs_client,
    ) -> None:
        self.writer = SpoolWriter(engine, spool, wake)
        self.budget = budget or RateBudget()
        self.sources: list[Any] = []
        for spec in specs:
            if spec.kind == "cloudwatch":
                self.sources.append(
                    CloudWatchSource(spec, self.writer, engine, self.budget, since_ms=since_ms, client=client_factory())
                )
            elif spec.kind == "pubsub":
                from kubeguard.sources.pubsub import PubSubSource

                self.sources.append(PubSubSource(spec, self.writer, engine))
            else:
                self.sources.append(LogFileSource(spec, self.writer, engine))

    def start(self) -> None:
        for source in self.sources:
            log.info("starting source %s (cluster %s)", source.spec.name, source.spec.cluster)
            source.start()

    def stop(self) -> None:
        for source in self.sources:
            source.stop()

    def health(self) -> list[SourceHealth]:
        return [source.health for source in self.sources]

    def snapshot(self) -> list[dict[str, Any]]:
        return [health.snapshot() for health in self.health()]

    def collector(self) -> SourcesCollector:
        return SourcesCollector(self.health)
