"""Publish findings as EventBridge ``GuardDuty Finding`` events to webhooks, a JSONL file or stdout.

Every new finding and every update is published at once (GuardDuty waits up to 5 minutes and then batches
updates; a self-hosted service has no reason to). Each sink has its own bounded queue and worker thread:
a slow or dead webhook delays only itself, a full queue drops the event and counts it, and a failed
delivery is retried with exponential backoff before it is counted as lost. Suppressed findings never
reach :meth:`Publisher.publish` (the recorder decides that).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

log = logging.getLogger(__name__)

DETAIL_TYPE = "GuardDuty Finding"
SOURCE = "aws.guardduty"
#: Backoff before retry n (1-based) is BASE * 2**(n-1), capped.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0

#: Called with (sink name, reason) when an event is lost, and with the sink name when one is delivered.
FailureHook = Callable[[str, str], None]
SuccessHook = Callable[[str], None]


def eventbridge_event(finding: Mapping[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The EventBridge envelope of one finding (reference §3.5): ``detail`` is the finding itself."""
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": finding.get("accountId", ""),
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": finding.get("region", ""),
        "resources": [],
        "detail": dict(finding),
    }


class Sink(Protocol):
    name: str

    def deliver(self, event: bytes) -> None:
        """Deliver one serialized event; raise to have it retried."""


class PermanentFailure(Exception):
    """A delivery that retrying cannot fix (the receiver rejected the event itself)."""


class StdoutSink:
    name = "stdout"

    def deliver(self, event: bytes) -> None:
        sys.stdout.buffer.write(event + b"\n")
        sys.stdout.buffer.flush()


class JsonlFileSink:
    """Appends one event per line; the file is opened per write so log rotation just works."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"

    def deliver(self, event: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(event + b"\n")


class HttpSink:
    """POSTs each event as JSON; 2xx is success, 4xx other than 408/429 is permanent, the rest retried."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        self.url = url
        # The name is a metric label (served on /metrics) and goes into logs: no user:password or query.
        self.name = f"http:{_redacted(url)}"
        self._client = httpx.Client(
            timeout=timeout, headers={"Content-Type": "application/json", **(headers or {})}
        )

    def deliver(self, event: bytes) -> None:
        response = self._client.post(self.url, content=event)
        if response.is_success:
            return
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise PermanentFailure(f"HTTP {response.status_code}")
        raise RuntimeError(f"HTTP {response.status_code}")


def _redacted(url: str) -> str:
    """``url`` without the credentials a webhook URL may carry in its userinfo, query or fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class QueuedSink:
    """A sink behind a bounded queue and a worker thread that retries with backoff."""

    def __init__(
        self,
        sink: Sink,
        *,
        queue_size: int = 10_000,
        max_attempts: int = 6,
        on_failure: FailureHook | None = None,
        on_success: SuccessHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_size)
        self._max_attempts = max(1, max_attempts)
        self._on_failure = on_failure or (lambda _name, _reason: None)
        self._on_success = on_success or (lambda _name: None)
        self._sleep = sleep
        self._thread = threading.Thread(target=self._run, name=f"publish {sink.name}", daemon=True)
        self._thread.start()

    def offer(self, event: bytes) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._on_failure(self.sink.name, "queue_full")

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``) and stop the worker."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self._deliver_with_retries(event)

    def _deliver_with_retries(self, event: bytes) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                self.sink.deliver(event)
            except PermanentFailure as exc:
                log.warning("sink %s refused a finding event: %s", self.sink.name, exc)
                self._on_failure(self.sink.name, "refused")
                return
            except Exception as exc:  # any transport error is retried the same way
                log.debug("sink %s attempt %d failed: %s", self.sink.name, attempt, exc)
                if attempt < self._max_attempts:
                    self._sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))
            else:
                self._on_success(self.sink.name)
                return
        log.warning("sink %s gave up on an event after %d attempts", self.sink.name, self._max_attempts)
        self._on_failure(self.sink.name, "retries_exhausted")


class Publisher:
    """Fans each finding out to every sink; never blocks the caller."""

    def __init__(self, sinks: list[QueuedSink]) -> None:
        self._sinks = sinks

    def publish(self, finding: Mapping[str, Any]) -> None:
        if not self._sinks:
            return
        event = orjson.dumps(eventbridge_event(finding))
        for sink in self._sinks:
            sink.offer(event)

    def close(self, timeout: float = 5.0) -> None:
        for sink in self._sinks:
            sink.close(timeout)
