"""What each live source has done and how far behind it is: for ``GET /api/sources``, ``/metrics`` and logs.

A source is *behind* when it last had everything that existed more than ``behind_after`` seconds ago
(CloudWatch: the end of its last complete read of the log group; file: the last time it reached the end
of the file). Crossing that line either way is logged once, so an operator's log shows when a source fell
behind and when it recovered, not a line per poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: Lag past which a source is reported as behind.
DEFAULT_BEHIND_AFTER_SECONDS = 120.0
#: Error messages are kept this long at most (they can quote a whole response).
MAX_ERROR_CHARS = 500


class SourceHealth:
    """Counters and position of one source; updated by its thread, read by the API and the collector."""

    def __init__(
        self,
        name: str,
        kind: str,
        target: str,
        cluster: str,
        *,
        behind_after: float = DEFAULT_BEHIND_AFTER_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.kind = kind
        self.target = target
        self.cluster = cluster
        self.behind_after = behind_after
        self._clock = clock
        self._lock = threading.Lock()
        self.state = "starting"
        self.events_read = 0
        self.batches = 0
        self.rejects: Counter[str] = Counter()
        self.skipped_duplicates = 0
        self.last_event_ms: int | None = None
        self.caught_up_ms: int | None = None
        self.throttles = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_ms: int | None = None
        self.cursor: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}
        self.behind = False

    def read(self, events: int, rejects: Counter[str], last_event_ms: int | None, duplicates: int = 0) -> None:
        with self._lock:
            self.events_read += events
            self.rejects.update(rejects)
            self.skipped_duplicates += duplicates
            if events:
                self.batches += 1
            if last_event_ms is not None:
                self.last_event_ms = max(self.last_event_ms or 0, last_event_ms)

    def committed(self, cursor: dict[str, Any], caught_up_ms: int | None = None) -> None:
        with self._lock:
            self.cursor = dict(cursor)
            if caught_up_ms is not None:
                self.caught_up_ms = caught_up_ms
            self.state = "running"

    def failed(self, message: str, *, throttled: bool = False) -> None:
        with self._lock:
            if throttled:
                self.throttles += 1
            else:
                self.errors += 1
            self.last_error = message[:MAX_ERROR_CHARS]
            self.last_error_ms = int(self._clock() * 1000)
            self.state = "backing_off"

    def set_state(self, state: str) -> None:
        with self._lock:
            self.state = state

    def lag_seconds(self) -> float | None:
        if self.caught_up_ms is None:
            return None
        return max(0.0, self._clock() - self.caught_up_ms / 1000)

    def check_lag(self) -> None:
        """Log once when the source falls behind and once when it catches up again."""
        lag = self.lag_seconds()
        behind = lag is None or lag > self.behind_after
        if self.caught_up_ms is None and not self.behind and self.state == "starting":
            return
        if behind and not self.behind:
            shown = "not yet caught up" if lag is None else f"{lag:.0f}s behind"
            log.warning("source %s is behind: %s (last error: %s)", self.name, shown, self.last_error or "none")
        elif not behind and self.behind:
            log.info("source %s has caught up: %.0fs behind", self.name, lag or 0.0)
        self.behind = behind

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            lag = self.lag_seconds()
            return {
                "name": self.name,
                "kind": self.kind,
                "target": self.target,
                "cluster": self.cluster,
                "state": self.state,
                "behind": self.behind,
                "eventsRead": self.events_read,
                "batches": self.batches,
                "duplicatesDropped": self.skipped_duplicates,
                "rejects": dict(self.rejects),
                "lastEventTime": _iso(self.last_event_ms),
                "caughtUpTo": _iso(self.caught_up_ms),
                "lagSeconds": round(lag, 3) if lag is not None else None,
                "throttles": self.throttles,
                "errors": self.errors,
                "lastError": self.last_error,
                "lastErrorTime": _iso(self.last_error_ms),
                "cursor": self.cursor,
                **self.extra,
            }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class SourcesCollector(Collector):
    """Exposes every source's health as Prometheus metrics, read at scrape time (no second bookkeeping)."""

    def __init__(self, sources: Callable[[], list[SourceHealth]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Any]:
        labels = ["source", "kind", "cluster"]
        read = CounterMetricFamily("kubeguard_source_events_read", "Audit events a live source read", labels=labels)
        rejects = CounterMetricFamily(
            "kubeguard_source_rejects", "Records a live source could not use", labels=[*labels, "reason"]
        )
        duplicates = CounterMetricFamily(
            "kubeguard_source_duplicates_dropped", "Events a re-read found already read", labels=labels
        )
        throttles = CounterMetricFamily(
            "kubeguard_source_throttles", "Requests the log service throttled", labels=labels
        )
        errors = CounterMetricFamily("kubeguard_source_errors", "Failed reads, retried with backoff", labels=labels)
        lag = GaugeMetricFamily(
            "kubeguard_source_lag_seconds", "How long ago the source last had everything that existed", labels=labels
        )
        last = GaugeMetricFamily(
            "kubeguard_source_last_event_timestamp_seconds", "Time of the newest event read", labels=labels
        )
        behind = GaugeMetricFamily("kubeguard_source_behind", "1 while the source is behind", labels=labels)
        for health in self._sources():
            snap = health.snapshot()
            values = [health.name, health.kind, health.cluster]
            read.add_metric(values, snap["eventsRead"])
            duplicates.add_metric(values, snap["duplicatesDropped"])
            for reason, count in sorted(snap["rejects"].items()):
                rejects.add_metric([*values, reason], count)
            throttles.add_metric(values, snap["throttles"])
            errors.add_metric(values, snap["errors"])
            if snap["lagSeconds"] is not None:
                lag.add_metric(values, snap["lagSeconds"])
            if health.last_event_ms is not None:
                last.add_metric(values, health.last_event_ms / 1000)
            behind.add_metric(values, 1.0 if snap["behind"] else 0.0)
        yield from (read, rejects, duplicates, throttles, errors, lag, last, behind)
