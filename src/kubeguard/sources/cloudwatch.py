"""Read an EKS cluster's audit log from CloudWatch Logs, live or over a past interval.

EKS writes one audit Event per log event into streams named ``kube-apiserver-audit-*`` of the group
``/aws/eks/<cluster>/cluster``. FilterLogEvents over the group is the only call that reads all streams
at once, and it has three habits a reader must survive: it pages with ``nextToken`` and may return empty
pages that still carry one; events arrive late and out of order across streams; and it allows only a
few requests per second per account and Region.

So the reader works in *sweeps*: one FilterLogEvents pagination over ``[start, end]``, to the last page.
Each sweep starts ``overlap`` before the end of the previous one, and every event id (and ``auditID`` and
stage) read within that overlap is remembered, so an event that arrived late, or shares the millisecond
of the last one read, is read on the next sweep and an event already read is dropped. The ids are stored
with each batch and the resume point with the end of each sweep, both in the transactions that spool the
events, so a kill at any instant loses nothing and repeats nothing. A backfill is cut into slices so the
remembered ids stay bounded.

Credentials, Region and endpoint are the AWS SDK's own (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``, IRSA, EKS Pod Identity, ...); kubeguard adds nothing of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubeguard.audit.event import AuditEvent
from kubeguard.sources.health import SourceHealth
from kubeguard.sources.loop import LiveSource
from kubeguard.sources.pacing import Backoff, RateBudget
from kubeguard.sources.records import audit_key, read_event
from kubeguard.sources.spec import SourceSpec, SourceSpecError
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store import source_cursors
from kubeguard.store.source_cursors import SeenEvent

log = logging.getLogger(__name__)

AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
REJECT_OTHER_STREAM = "not_audit_stream"
#: Error codes CloudWatch Logs uses when it sheds load.
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException"})
#: A backfill is read in slices of at most this much log time (and at least three overlaps).
SLICE_MS = 15 * 60 * 1000
#: Failed attempts in a row after which ``scan --source`` stops (with backoff, about two minutes).
SCAN_MAX_FAILURES = 8
#: FilterLogEvents' page size ceiling.
PAGE_LIMIT = 10_000


class ReadFailed(RuntimeError):
    """A one-off read (``scan --source``) failed too often in a row; live sources never raise it."""


class LogsClient(Protocol):
    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]: ...


def logs_client() -> Any:
    """A ``logs`` client from the SDK's standard chain only; a missing Region is a clear start-up error."""
    from kubeguard.extras import require

    boto3 = require("boto3")
    from botocore.config import Config

    session = boto3.session.Session()
    # botocore reads AWS_DEFAULT_REGION and profiles; the other SDKs (and EKS Pod Identity) set AWS_REGION.
    region = session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise SourceSpecError("no AWS Region for CloudWatch Logs: set AWS_REGION (or a profile with a region)")
    # Retries are ours (shared budget, backoff, counted and shown), not hidden inside the SDK.
    config = Config(
        retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60, user_agent_extra="kubeguard"
    )
    return session.client("logs", region_name=region, config=config)


@dataclass(slots=True)
class Sweep:
    """What one page of a sweep held, after the stream filter, de-duplication and decoding."""

    events: list[tuple[AuditEvent, bytes]] = field(default_factory=list)
    seen: list[SeenEvent] = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    last_event_ms: int | None = None


class SeenIds:
    """Event ids and audit keys read within the overlap window, with their event times."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.audit_keys: dict[str, int] = {}

    def load(self, rows: list[SeenEvent]) -> None:
        for row in rows:
            self.add(row)

    def add(self, row: SeenEvent) -> None:
        self.ids[row.event_id] = row.timestamp_ms
        if row.audit_key:
            self.audit_keys[row.audit_key] = row.timestamp_ms

    def forget_before(self, timestamp_ms: int) -> None:
        self.ids = {key: ts for key, ts in self.ids.items() if ts >= timestamp_ms}
        self.audit_keys = {key: ts for key, ts in self.audit_keys.items() if ts >= timestamp_ms}


class CloudWatchReader:
    """Paginates FilterLogEvents through the shared budget, retrying every failure with backoff."""

    def __init__(
        self,
        client: LogsClient,
        log_group: str,
        budget: RateBudget,
        health: SourceHealth,
        stop: threading.Event,
        backoff: Backoff | None = None,
        max_failures: int | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.client = client
        self.log_group = log_group
        self.budget = budget
        self.health = health
        self.stop = stop
        self.backoff = backoff or Backoff()

    def pages(self, start_ms: int, end_ms: int | None) -> Iterator[list[dict[str, Any]]]:
        """Every page of one sweep, empty ones included, until no ``nextToken`` (or stop)."""
        params: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamNamePrefix": AUDIT_STREAM_PREFIX,
            "startTime": start_ms,
            "limit": PAGE_LIMIT,
            # Deprecated and always on in AWS; emulators still need it to merge the streams by time.
            "interleaved": True,
        }
        if end_ms is not None:
            params["endTime"] = end_ms
        while True:
            response = self._request(params)
            if response is None:
                return
            yield response.get("events") or []
            token = response.get("nextToken")
            if not token:
                return
            params["nextToken"] = token

    def _request(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """One FilterLogEvents call, repeated until it succeeds; None once the source is stopping."""
        from botocore.exceptions import BotoCoreError, ClientError

        while not self.stop.is_set():
            if not self.budget.take(self.stop):
                return None
            try:
                response = self.client.filter_log_events(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                self._failed(f"{code}: {exc}", throttled=code in THROTTLE_CODES)
            except (BotoCoreError, OSError, ValueError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}", throttled=False)
            else:
                self.backoff.reset()
                return response
        return None

    def _failed(self, message: str, *, throttled: bool) -> None:
        self.health.failed(message, throttled=throttled)
        if self.max_failures is not None and self.backoff.failures + 1 >= self.max_failures:
            raise ReadFailed(f"{self.log_group}: giving up after {self.max_failures} failed attempts: {message}")
        delay = self.backoff.next_delay()
        level = logging.INFO if throttled and self.backoff.failures < 4 else logging.WARNING
        log.log(level, "source %s: %s; retrying in %.1fs", self.health.name, message, delay)
        self.health.check_lag()
        self.stop.wait(delay)


def sort_page(raw_events: list[dict[str, Any]], seen: SeenIds, cluster: str) -> Sweep:
    """Keep the new audit events of a page and count the rest; ``page.seen`` lists every id it read.

    ``seen`` is only consulted: the caller adds ``page.seen`` once the page is committed, so a failed
    commit leaves the ids unread and the retry reads them again.
    """
    page = Sweep()
    ids: set[str] = set()
    keys: set[str] = set()
    for item in raw_events:
        event_id = str(item.get("eventId", ""))
        timestamp = int(item.get("timestamp", 0))
        if event_id and (event_id in seen.ids or event_id in ids):
            page.duplicates += 1
            continue
        row = SeenEvent(event_id, None, timestamp)
        message = str(item.get("message", "")).encode()
        if not str(item.get("logStreamName", "")).startswith(AUDIT_STREAM_PREFIX):
            page.rejects[REJECT_OTHER_STREAM] += 1
        else:
            event = read_event(message)
            if isinstance(event, str):
                page.rejects[event] += 1
            else:
                key = audit_key(event)
                if key is not None and (key in seen.audit_keys or key in keys):
                    page.duplicates += 1
                else:
                    if key is not None:
                        keys.add(key)
                    row = SeenEvent(event_id, key, timestamp)
                    event.cluster = cluster
                    # A raw line break in a JSON message can only be whitespace: flatten it for JSON Lines.
                    page.events.append((event, message.replace(b"\n", b" ").replace(b"\r", b" ")))
                    page.last_event_ms = max(page.last_event_ms or 0, timestamp)
        if event_id:
            ids.add(event_id)
            page.seen.append(row)
    return page


def read_range(
    spec: SourceSpec,
    start_ms: int,
    end_ms: int | None,
    *,
    client: LogsClient | None = None,
    budget: RateBudget | None = None,
    health: SourceHealth | None = None,
    stop: threading.Event | None = None,
    max_failures: int | None = SCAN_MAX_FAILURES,
) -> Iterator[AuditEvent]:
    """Every audit event of the group between two times, once each: ``kubeguard scan --source``.

    Unlike a live source, a one-off read gives up (:class:`ReadFailed`) after ``max_failures`` failed
    attempts in a row: a user waiting at a terminal wants the error, not an endless retry.
    """
    health = health or SourceHealth(spec.name, spec.kind, spec.target, spec.cluster)
    reader = CloudWatchReader(
        client or logs_client(),
        spec.target,
        budget or RateBudget(),
        health,
        stop or threading.Event(),
        max_failures=max_failures,
    )
    # One pagination never returns an event twice, and copies of an event under another id are dropped by
    # the pipeline's own bounded de-duplication: remembering every id of a long interval would only cost memory.
    nothing_seen = SeenIds()
    for raw in reader.pages(start_ms, end_ms):
        page = sort_page(raw, nothing_seen, spec.cluster)
        health.read(len(page.events), page.rejects, page.last_event_ms, page.duplicates)
        for event, _message in page.events:
            yield event


class CloudWatchSource(LiveSource):
    """A live reader of one log group feeding the spool; runs in its own thread until stopped."""

    def __init__(
        self,
        spec: SourceSpec,
        writer: SpoolWriter,
        engine: Any,
        budget: RateBudget,
        *,
        since_ms: int,
        client: LogsClient | None = None,
        health: SourceHealth | None = None,
        clock: Any = time.time,
    ) -> None:
        super().__init__(spec)
        self.spec = spec
        self.writer = writer
        self.engine = engine
        self.since_ms = since_ms
        self.health = health or SourceHealth(spec.name, spec.kind, spec.target, spec.cluster)
        self.reader = CloudWatchReader(client or logs_client(), spec.target, budget, self.health, self.stop_event)
        self.overlap_ms = int(spec.overlap_seconds * 1000)
        self.slice_ms = max(SLICE_MS, 3 * self.overlap_ms)
        self.seen = SeenIds()
        self.floor_ms = self.read_to_ms = since_ms
        self.newest_ms: int | None = None
        self._clock = clock
        self._resumed = False

    def resume(self) -> None:
        """Load the cursor and the ids remembered for the overlap; on a first start, begin at ``since``."""
        position = source_cursors.load_position(self.engine, self.spec.name)
        if position is None:
            self.floor_ms = self.read_to_ms = self.since_ms
            self.newest_ms = None
            self.writer.commit(self._cursor_write())
            log.info("source %s: first start, reading from %s", self.spec.name, _iso(self.since_ms))
        else:
            self.floor_ms = int(position["floor_ms"])
            self.read_to_ms = int(position["read_to_ms"])
            self.newest_ms = position.get("newest_event_ms")
            self.seen.load(source_cursors.load_seen(self.engine, self.spec.name))
            log.info(
                "source %s: resuming at %s (read up to %s) with %d event ids remembered",
                self.spec.name,
                _iso(self.next_start()),
                _iso(self.read_to_ms),
                len(self.seen.ids),
            )
        self.health.committed(self._position())

    def next_start(self) -> int:
        """``overlap`` before what was read up to, or before the newest event read if that is older.

        Anchoring on the newest event too keeps re-reading where late events land when a group's events
        are stamped behind the wall clock (a replay, a skewed clock, a slow pipeline); the re-read then
        costs only the events of the overlap, whatever the gap since.
        """
        anchor = self.read_to_ms if self.newest_ms is None else min(self.read_to_ms, self.newest_ms)
        return max(self.floor_ms, anchor - self.overlap_ms)

    def advance(self) -> bool:
        if not self._resumed:
            self.resume()
            self._resumed = True
        return not self.sweep_once()

    def sweep_once(self) -> bool:
        """Read from the next start to the present (or one backfill slice further); True once caught up."""
        now_ms = int(self._clock() * 1000)
        start = self.next_start()
        end = min(now_ms, self.read_to_ms + self.slice_ms)
        for raw in self.reader.pages(start, end):
            page = sort_page(raw, self.seen, self.spec.cluster)
            self._store(page)
        if self.stop_event.is_set():
            return False  # an interrupted sweep is read again from its start (its ids are stored)
        self.read_to_ms = max(self.read_to_ms, end)
        self.writer.commit(self._cursor_write())
        self.seen.forget_before(self.next_start())
        self.health.committed(self._position(), caught_up_ms=self.read_to_ms)
        return end >= now_ms

    def _store(self, page: Sweep) -> None:
        if not page.seen:
            self.health.read(0, page.rejects, None, page.duplicates)
            return

        def remember(conn: Any) -> None:
            source_cursors.add_seen(conn, self.spec.name, page.seen)

        if page.events:
            body = b"\n".join(message for _event, message in page.events)
            self.writer.append(self.spec.cluster, body, len(page.events), remember)
        else:
            self.writer.commit(remember)
        for row in page.seen:
            self.seen.add(row)
        if page.last_event_ms is not None:
            self.newest_ms = max(self.newest_ms or 0, page.last_event_ms)
        self.health.read(len(page.events), page.rejects, page.last_event_ms, page.duplicates)

    def _cursor_write(self) -> Any:
        position = self._position()
        keep_from = self.next_start()

        def write(conn: Any) -> None:
            source_cursors.save_position(conn, self.spec.name, position)
            source_cursors.forget_seen_before(conn, self.spec.name, keep_from)

        return write

    def _position(self) -> dict[str, Any]:
        return {
            "log_group": self.spec.target,
            "floor_ms": self.floor_ms,
            "read_to_ms": self.read_to_ms,
            "newest_event_ms": self.newest_ms,
            "next_start_ms": self.next_start(),
        }


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
