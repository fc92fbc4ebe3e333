"""Publish findings to the configured sinks through the durable outbox.

Every new finding and every update is published at once (GuardDuty waits up to 5 minutes and then batches
updates; a self-hosted service has no reason to). :meth:`Publisher.stage` runs inside the transaction that
records the findings and puts each one in the outbox of every sink whose filters want it, so a finding that
is recorded is delivered even if the process dies right after. Each sink's worker (``sinks.worker``) then
delivers from its own outbox: a slow or dead destination delays only itself, and its backlog survives
restarts. Suppressed findings never reach the publisher (the recorder decides that).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from kubeguard.findings.formats.links import console_link
from kubeguard.sinks import outbox
from kubeguard.sinks.filters import SinkFilter
from kubeguard.sinks.health import SinkHealth
from kubeguard.sinks.worker import SinkWorker, now_ms

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Route:
    """A sink as the publisher sees it: who it is, what it wants, and the worker that delivers."""

    worker: SinkWorker
    filter: SinkFilter

    @property
    def name(self) -> str:
        return self.worker.name

    @property
    def health(self) -> SinkHealth:
        return self.worker.health


class Publisher:
    """Stages findings for every sink and wakes the sinks' workers; never blocks on a destination."""

    def __init__(self, engine: Engine | None = None, public_url: str = "") -> None:
        self.engine = engine
        self.public_url = public_url
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._started = False

    def link(self, finding: Mapping[str, Any]) -> str:
        return console_link(self.public_url, finding)

    def add(self, route: Route) -> None:
        with self._lock:
            if route.name in self._routes:
                raise ValueError(f"two sinks are named {route.name!r}; give one a distinct name")
            self._routes[route.name] = route
            started = self._started
        if started:
            route.worker.start()

    def remove(self, name: str, *, discard_backlog: bool = True) -> None:
        with self._lock:
            route = self._routes.pop(name, None)
        if route is None:
            return
        route.worker.stop()
        if discard_backlog and self.engine is not None:
            with self.engine.begin() as conn:
                outbox.clear(conn, name)

    def routes(self) -> list[Route]:
        with self._lock:
            return list(self._routes.values())

    def start(self) -> None:
        with self._lock:
            self._started = True
            routes = list(self._routes.values())
        for route in routes:
            route.worker.start()
        self._report_orphans()

    def stage(self, conn: Connection, findings: Sequence[dict[str, Any]], *, archived_now: bool = False) -> None:
        """Put ``findings`` in the outbox of each sink that wants them, within the caller's transaction."""
        if not findings:
            return
        moment = now_ms()
        for route in self.routes():
            wanted = [f for f in findings if route.filter.wants(f, archived_now=archived_now)]
            if not wanted:
                continue
            room = route.worker.options.outbox_size - outbox.depth(conn, route.name)
            if room < len(wanted):
                lost = len(wanted) - max(room, 0)
                log.warning("sink %s: outbox full (%d events); %d finding event(s) dropped",
                            route.name, route.worker.options.outbox_size, lost)
                route.health.on_dropped("outbox_full", lost, "outbox full")
                wanted = wanted[: max(room, 0)]
            outbox.add(conn, route.name, wanted, moment)

    def wake(self) -> None:
        for route in self.routes():
            route.worker.wake()

    def publish(self, finding: Mapping[str, Any]) -> None:
        """Stage one finding in a transaction of its own (for callers outside a recording transaction)."""
        if self.engine is None or not self._routes:
            return
        with self.engine.begin() as conn:
            self.stage(conn, [dict(finding)])
        self.wake()

    def health(self) -> list[dict[str, Any]]:
        return [route.health.snapshot() for route in self.routes()]

    def close(self, timeout: float = 5.0) -> None:
        for route in self.routes():
            route.worker.stop(timeout)

    def _report_orphans(self) -> None:
        """Events left for sinks that are no longer configured are kept, and said to be waiting."""
        if self.engine is None:
            return
        with self.engine.connect() as conn:
            waiting = outbox.depths(conn)
        names = {route.name for route in self.routes()}
        for sink, count in waiting.items():
            if sink not in names:
                log.warning("outbox: %d event(s) wait for sink %r, which is not configured any more", count, sink)
