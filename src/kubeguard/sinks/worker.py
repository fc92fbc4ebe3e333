"""One thread per sink: take due events from the outbox, deliver them, retry failures with backoff.

A transient failure reschedules the batch (backoff doubles per attempt up to ``max_backoff_seconds``) and
keeps it; only an event the destination refuses, one past ``max_attempts`` or one older than
``max_age_seconds`` is dropped, and every drop is counted and logged with its reason. The first failure of
an outage and the recovery are logged at WARNING with the destination's own error text, so the log says
why a sink is behind. Interval sinks (S3) deliver what is due once per interval, as one object.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from kubeguard.sinks import outbox
from kubeguard.sinks.delivery import DeliveryError, Destination, Item, PartialFailure, PermanentFailure
from kubeguard.sinks.health import SinkHealth
from kubeguard.sinks.options import SinkOptions

log = logging.getLogger(__name__)
#: Longest sleep between looks at the outbox when nothing wakes the worker.
IDLE_POLL_SECONDS = 1.0
#: What rendering a malformed finding raises (never a transport): retrying could not help.
UNRENDERABLE = (TypeError, KeyError, AttributeError, IndexError, UnicodeError)


def now_ms() -> int:
    return int(time.time() * 1000)


class SinkWorker:
    def __init__(
        self,
        engine: Engine,
        destination: Destination,
        options: SinkOptions,
        health: SinkHealth,
        *,
        link: Callable[[dict], str],
        interval_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.destination = destination
        self.options = options
        self.health = health
        self.name = health.name
        self._link = link
        self._interval = interval_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sink {self.name}", daemon=True)
        self._turn = Turn(engine, self.name)
        #: When an interval sink last wrote; "never", so the first finding goes out at once.
        self._last_flush = -float("inf")

    def start(self) -> None:
        with self.engine.connect() as conn:
            self.health.set_depth(outbox.depth(conn, self.name))
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the delivery in progress; what is still in the outbox waits for the next start."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.destination.close()
        self._turn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the sink's thread
                log.exception("sink %s: outbox step failed; retrying", self.name)
                worked = False
            if not worked:
                self._wake.wait(self._idle_seconds())
                self._wake.clear()

    def _idle_seconds(self) -> float:
        if self._interval and time.monotonic() - self._last_flush < self._interval:
            return max(0.05, min(IDLE_POLL_SECONDS, self._last_flush + self._interval - time.monotonic()))
        with self.engine.connect() as conn:
            upcoming = outbox.next_due_ms(conn, self.name)
        if upcoming is None:
            return IDLE_POLL_SECONDS
        return max(0.01, min(IDLE_POLL_SECONDS, (upcoming - now_ms()) / 1000))

    def step(self) -> bool:
        """Deliver one batch of due events; False when there was nothing to do (or another process is)."""
        with self._turn as mine:
            return self._step() if mine else False

    def _step(self) -> bool:
        if self._interval and time.monotonic() - self._last_flush < self._interval and not self._stop.is_set():
            return False
        with self.engine.connect() as conn:
            rows = outbox.due(conn, self.name, now_ms(), self.destination.batch_size)
        if not rows:
            return False
        rows = self._drop_expired(rows)
        if rows:
            self._deliver(rows)
        with self.engine.connect() as conn:
            self.health.set_depth(outbox.depth(conn, self.name))
        return True

    def _drop_expired(self, rows: list[outbox.Pending]) -> list[outbox.Pending]:
        oldest_kept = now_ms() - self.options.max_age_seconds * 1000
        expired = [row for row in rows if row.enqueued_at_ms < oldest_kept]
        if expired:
            self._drop(expired, "expired", f"older than max_age_seconds={self.options.max_age_seconds}")
        return [row for row in rows if row.enqueued_at_ms >= oldest_kept]

    def _deliver(self, rows: list[outbox.Pending]) -> None:
        items = [Item(row.finding, self._link(row.finding)) for row in rows]
        try:
            self.destination.deliver(items)
        except PermanentFailure as error:
            self._drop(rows, "refused", str(error))
        except PartialFailure as error:
            failed = {rows[index].id for index in error.failed}
            self._delivered([row for row in rows if row.id not in failed])
            refused = [rows[i] for i, (_reason, permanent) in error.failed.items() if permanent]
            again = [rows[i] for i, (_reason, permanent) in error.failed.items() if not permanent]
            if refused:
                self._drop(refused, "refused", str(error))
            if again:
                self._retry(again, str(error))
        except DeliveryError as error:
            self._retry(rows, str(error))
        except UNRENDERABLE as error:
            self._isolate(rows, f"{type(error).__name__}: {error}")
        except Exception as error:  # noqa: BLE001 - transport errors (DNS, refused, TLS, SDK) are retried
            self._retry(rows, f"{type(error).__name__}: {error}")
        else:
            self._delivered(rows)
        self._last_flush = time.monotonic()

    def _isolate(self, rows: list[outbox.Pending], error: str) -> None:
        """A finding this sink cannot render: find it by delivering one at a time, drop it, keep the rest.

        Retrying it would hold every later finding behind it until it expired.
        """
        if len(rows) == 1:
            log.error("sink %s: a finding it cannot render was dropped (%s)", self.name, error)
            self._drop(rows, "unrenderable", error)
            return
        for row in rows:
            self._deliver([row])

    def _delivered(self, rows: list[outbox.Pending]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            outbox.remove(conn, (row.id for row in rows))
        if self.health.failing_since is not None:
            log.warning("sink %s: delivering again after an outage since %s", self.name,
                        time.strftime("%H:%M:%S", time.localtime(self.health.failing_since)))
        self.health.on_delivered(len(rows))

    def _retry(self, rows: list[outbox.Pending], error: str) -> None:
        limit = self.options.max_attempts
        if limit:
            spent = [row for row in rows if row.attempts + 1 >= limit]
            if spent:
                self.health.on_retry(0, error)
                self._drop(spent, "retries_exhausted", f"{limit} attempts failed, the last: {error}")
                rows = [row for row in rows if row.attempts + 1 < limit]
            if not rows:
                return
        attempts = max(row.attempts for row in rows) + 1
        delay = min(self.options.max_backoff_seconds, self.options.backoff_seconds * 2 ** (attempts - 1))
        with self.engine.begin() as conn:
            outbox.reschedule(conn, rows, now_ms() + int(delay * 1000), error)
        # Loud at the start of an outage and then now and again, not at every retry of a long one.
        loud = self.health.failing_since is None or attempts in (2, 5, 10) or attempts % 30 == 0
        level = logging.WARNING if loud else logging.DEBUG
        log.log(level, "sink %s: delivery failed (%s); %d event(s) kept, attempt %d, next try in %.1fs",
                self.name, error, len(rows), attempts, delay)
        self.health.on_retry(len(rows), error)

    def _drop(self, rows: list[outbox.Pending], reason: str, error: str) -> None:
        with self.engine.begin() as conn:
            outbox.remove(conn, (row.id for row in rows))
        log.warning("sink %s: dropped %d event(s) (%s): %s", self.name, len(rows), reason, error)
        self.health.on_dropped(reason, len(rows), error)


class Turn:
    """Whose turn it is to deliver a sink when several services share one PostgreSQL store.

    Each step runs under a PostgreSQL advisory lock keyed by the database, schema and sink, taken on a
    connection of its own and released after the step, so two replicas never deliver the same events (each
    step deletes what it delivered before it lets go) and a sink keeps its order. SQLite has one process.
    """

    def __init__(self, engine: Engine, sink: str) -> None:
        self._engine = engine
        self._sink = sink
        self._locks: Engine | None = None
        self._conn: Connection | None = None
        self._key: int | None = None
        self._taken = False

    def __enter__(self) -> bool:
        self._taken = False
        if self._engine.dialect.name != "postgresql":
            return True
        try:
            conn = self._connection()
            self._taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar())
        except Exception:
            self.close()
            raise
        return self._taken

    def __exit__(self, *_exc: object) -> None:
        if self._engine.dialect.name == "postgresql" and self._conn is not None and self._taken:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            except Exception:  # noqa: BLE001 - a lost connection has released the lock with it
                self.close()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            if self._locks is None:
                self._locks = create_engine(self._engine.url, poolclass=NullPool)
            self._conn = self._locks.connect().execution_options(isolation_level="AUTOCOMMIT")
            where = self._conn.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
            digest = hashlib.sha256(f"kubeguard-sink:{where}:{self._sink}".encode()).digest()
            self._key = int.from_bytes(digest[:8], "big", signed=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._locks is not None:
            self._locks.dispose()
            self._locks = None
