"""Request pacing shared by every source: one rate budget per process, and backoff after errors.

CloudWatch Logs allows FilterLogEvents only a few times per second per account and region, for all
callers together; two sources each polling at "the limit" would throttle each other for ever. Every
source therefore takes its requests from one token bucket, and a source that is throttled anyway (other
tools share the account) backs off exponentially with jitter instead of hammering or giving up.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

#: FilterLogEvents' documented quota is 5 requests per second per account and Region; keep headroom.
DEFAULT_REQUESTS_PER_SECOND = 4.0


class RateBudget:
    """A thread-safe token bucket: ``take`` blocks until a request may be sent (or ``stop`` is set)."""

    def __init__(
        self,
        rate: float = DEFAULT_REQUESTS_PER_SECOND,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("a rate budget needs a positive rate")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()
        self.requests = 0

    def _reserve(self) -> float:
        """Take a token now if one is there; else how long to wait for the next."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                self.requests += 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def take(self, stop: threading.Event | None = None) -> bool:
        """Wait for a token; False if ``stop`` was set while waiting."""
        while True:
            wait = self._reserve()
            if wait == 0.0:
                return True
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)


class Backoff:
    """Exponential backoff with full jitter, reset by a success."""

    def __init__(self, initial: float = 1.0, maximum: float = 60.0, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.maximum, self.initial * 2 ** (self.failures - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
