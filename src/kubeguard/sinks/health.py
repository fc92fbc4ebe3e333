"""Delivery health of one sink: counters for /metrics and the state ``GET /api/sinks`` reports."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol


class HealthMetrics(Protocol):
    """The Prometheus side (``api.metrics.ServiceMetrics`` provides it)."""

    def sink_delivered(self, sink: str, count: int) -> None: ...
    def sink_retried(self, sink: str, count: int) -> None: ...
    def sink_dropped(self, sink: str, reason: str, count: int) -> None: ...
    def sink_depth(self, sink: str, depth: int) -> None: ...


class NoMetrics:
    def sink_delivered(self, sink: str, count: int) -> None:
        pass

    def sink_retried(self, sink: str, count: int) -> None:
        pass

    def sink_dropped(self, sink: str, reason: str, count: int) -> None:
        pass

    def sink_depth(self, sink: str, depth: int) -> None:
        pass


@dataclass
class SinkHealth:
    name: str
    type: str
    format: str
    outbox_size: int
    metrics: HealthMetrics = field(default_factory=NoMetrics)
    delivered: int = 0
    retried: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    outbox_depth: int = 0
    failing_since: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    last_delivered_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_delivered(self, count: int) -> None:
        with self._lock:
            self.delivered += count
            self.last_delivered_at = time.time()
            self.failing_since = None
        self.metrics.sink_delivered(self.name, count)

    def on_retry(self, count: int, error: str) -> None:
        with self._lock:
            self.retried += count
            self.last_error, self.last_error_at = error, time.time()
            self.failing_since = self.failing_since or self.last_error_at
        self.metrics.sink_retried(self.name, count)

    def on_dropped(self, reason: str, count: int, error: str = "") -> None:
        with self._lock:
            self.dropped[reason] += count
            if error:
                self.last_error, self.last_error_at = error, time.time()
        self.metrics.sink_dropped(self.name, reason, count)

    def set_depth(self, depth: int) -> None:
        self.outbox_depth = depth
        self.metrics.sink_depth(self.name, depth)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "type": self.type,
                "format": self.format,
                "state": "failing" if self.failing_since else "ok",
                "delivered": self.delivered,
                "retried": self.retried,
                "dropped": dict(self.dropped),
                "droppedTotal": sum(self.dropped.values()),
                "outboxDepth": self.outbox_depth,
                "outboxSize": self.outbox_size,
                "lastError": self.last_error,
                "lastErrorAt": _iso(self.last_error_at),
                "lastDeliveredAt": _iso(self.last_delivered_at),
                "failingSince": _iso(self.failing_since),
            }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
