"""The loop every live source runs in its own thread: advance, back off on errors, never stop.

A source only says how to make one step of progress (:meth:`LiveSource.advance`); this loop retries
whatever that raises with exponential backoff, counts and shows it in the source's health, logs when the
source falls behind or catches up, and waits for the poll interval when there was nothing to read.
"""

from __future__ import annotations

import logging
import threading

from kubeguard.sources.health import SourceHealth
from kubeguard.sources.pacing import Backoff
from kubeguard.sources.spec import SourceSpec

log = logging.getLogger(__name__)


class LiveSource:
    spec: SourceSpec
    health: SourceHealth

    def __init__(self, spec: SourceSpec) -> None:
        self.stop_event = threading.Event()
        self.backoff = Backoff()
        self._thread = threading.Thread(target=self._run, name=f"source {spec.name}", daemon=True)

    def advance(self) -> bool:
        """One step of reading; True when there may be more to read right away."""
        raise NotImplementedError

    def is_throttle(self, exc: Exception) -> bool:
        """Whether ``exc`` is the service shedding load (counted as a throttle, not an error)."""
        return False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                more = self.advance()
            except Exception as exc:  # noqa: BLE001 - never stop a source: count, show, back off, retry
                self.health.failed(f"{type(exc).__name__}: {exc}", throttled=self.is_throttle(exc))
                delay = self.backoff.next_delay()
                log.warning("source %s: %s: %s; retrying in %.1fs", self.spec.name, type(exc).__name__, exc, delay)
                self.health.check_lag()
                self.stop_event.wait(delay)
                continue
            self.backoff.reset()
            self.health.check_lag()
            if not more:
                self.stop_event.wait(self.spec.poll_seconds)
