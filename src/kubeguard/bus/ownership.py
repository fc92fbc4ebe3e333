"""Which worker processes which partition: PostgreSQL session advisory locks, shared out fairly.

Why locks in PostgreSQL: detector state is cached in a worker's memory, so a partition's clusters must be
processed by one worker at a time, and when that worker dies its partitions must move at once. A session
advisory lock has exactly that life: it is held for as long as the worker's database session lives and is
released by PostgreSQL the moment the session ends — ``kill -9`` closes the socket — with no lease timer
to tune. Each worker also holds one *membership* lock, so every worker can count the live workers from
``pg_locks`` and take its fair share, ``ceil(partitions / workers)``: a new worker makes the others
release their surplus, a dead worker's partitions are picked up by the survivors.

Fencing: the batch transaction runs on another connection than the locks, so it checks, inside the
transaction, that this worker's session still holds the partition (:meth:`PartitionLeases.fence`). A
worker whose session was cut cannot commit a batch that the partition's new owner may already process;
the batch's done mark is the second line (its primary key refuses a second commit).
"""

from __future__ import annotations

import logging
import math
import random
import zlib

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)


def lock_spaces(conn: Connection) -> tuple[int, int]:
    """First keys of the two-key advisory locks, for partitions and for members, derived from the store.

    Advisory locks are per database, not per schema: two kubeguard stores in one database (or the test
    suite's schema per test) must not share locks, so the key is a digest of database and schema.
    """
    name = conn.execute(text("SELECT current_database() || '.' || current_schema()")).scalar_one()
    base = zlib.crc32(f"kubeguard partitions {name}".encode()) & 0x7FFFFFFE
    return base, base | 1


_HELD = text(
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = :space "
    "AND pid = pg_backend_pid() AND granted"
)
_MEMBERS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = :space AND granted"
)
_FENCE = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = :space "
    "AND objid = :partition AND pid = :pid AND granted"
)


class LostOwnership(RuntimeError):
    """This worker no longer holds the partition; the batch is left for its new owner."""


class PartitionLeases:
    def __init__(self, engine: Engine, partitions: int) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("partition leases need PostgreSQL")
        self._engine = engine
        self.partitions = partitions
        self._conn: Connection | None = None
        self._pid = 0
        self._partition_space = self._member_space = 0
        self.owned: set[int] = set()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def join(self) -> None:
        """Open the lock session and take a membership lock under a random, unused member id."""
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        self._partition_space, self._member_space = lock_spaces(conn)
        while True:
            member = random.randrange(1, 2**31 - 1)
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:space, :member)"), {"space": self._member_space, "member": member}
            ).scalar_one()
            if got:
                break
        self._conn = conn
        self.owned = set()

    def leave(self) -> None:
        """Close the session: PostgreSQL releases every lock it held."""
        conn, self._conn = self._conn, None
        self.owned = set()
        if conn is not None:
            try:
                conn.invalidate()
            finally:
                conn.close()

    def fair_share(self) -> int:
        members = int(self._session().execute(_MEMBERS, {"space": self._member_space}).scalar_one())
        return math.ceil(self.partitions / max(members, 1))

    def held(self) -> set[int]:
        """The partitions this session holds, as PostgreSQL sees it (the truth, after a reconnect too)."""
        rows = self._session().execute(_HELD, {"space": self._partition_space})
        return {int(row[0]) for row in rows}

    def surplus(self) -> list[int]:
        """Partitions above the fair share, to be released once their current batch is finished."""
        extra = len(self.owned) - self.fair_share()
        return sorted(self.owned, reverse=True)[: max(extra, 0)]

    def acquire_up_to_share(self) -> list[int]:
        """Try free partitions, starting at a random one, until this worker holds its fair share."""
        share = self.fair_share()
        gained: list[int] = []
        start = random.randrange(self.partitions)
        for offset in range(self.partitions):
            if len(self.owned) >= share:
                break
            partition = (start + offset) % self.partitions
            if partition in self.owned:
                continue
            got = self._session().execute(
                text("SELECT pg_try_advisory_lock(:space, :partition)"),
                {"space": self._partition_space, "partition": partition},
            ).scalar_one()
            if got:
                self.owned.add(partition)
                gained.append(partition)
        return gained

    def release(self, partition: int) -> None:
        self._session().execute(
            text("SELECT pg_advisory_unlock(:space, :partition)"),
            {"space": self._partition_space, "partition": partition},
        )
        self.owned.discard(partition)

    def fence(self, conn: Connection, partition: int) -> None:
        """Raise :class:`LostOwnership` unless this worker's session still holds ``partition``.

        Called inside a batch's transaction, on the transaction's own connection.
        """
        held = conn.execute(
            _FENCE, {"space": self._partition_space, "partition": partition, "pid": self._pid}
        ).scalar_one()
        if not held:
            raise LostOwnership(f"partition {partition} is no longer held by this worker")

    def _session(self) -> Connection:
        if self._conn is None:
            raise LostOwnership("the worker's lock session is closed")
        return self._conn
