"""Group commit: the webhook batches of concurrent requests share one spool transaction, and its fsync.

A webhook request may answer 200 only once its batch is durable. Committed one by one, each batch pays a
whole transaction: an fsync of the SQLite WAL (``synchronous=FULL``) or a PostgreSQL commit flush, and on
SQLite a turn at the single write lock, which the drainer's detection transactions hold too. Under
concurrent senders those waits, not the bytes, bound the rate.

So batches queue here, and one commit at a time takes every batch waiting (up to :data:`MAX_GROUP_EVENTS`
events and :data:`MAX_GROUP_BYTES` bytes) and stores them in one transaction, one spool row each (the
drainer still detects one batch per transaction, and a batch's identity is its row). A request is resumed
only when the commit holding its batch has returned, so its 200 still follows durability. If that commit
fails, every request of the group gets the error (the webhook answers 503 with ``Retry-After``): none of
them was acknowledged, so the API server resends them all and nothing acknowledged is lost. While a commit
runs, the next group gathers; the group grows with the load, and a lone request commits at once.

A request that gives up waiting (the store timeout) before its commit starts is dropped from the queue; if
its commit had started, the batch may still land after the 503, and the resend is de-duplicated by event
id as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from kubeguard.store.spool import Spool, SpoolEntry

log = logging.getLogger(__name__)

#: Bounds on one group: about 50 full API-server batches; a larger backlog waits for the next commit.
MAX_GROUP_EVENTS = 20_000
MAX_GROUP_BYTES = 32 * 1024 * 1024


class GroupCommitFailed(Exception):
    """The commit holding this request's batch failed; nothing of its group was acknowledged."""


@dataclass(slots=True)
class _Waiting:
    entry: SpoolEntry
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    """Append batches to the spool, many requests per transaction; one commit in flight at a time."""

    def __init__(
        self,
        spool: Spool,
        *,
        max_events: int = MAX_GROUP_EVENTS,
        max_bytes: int = MAX_GROUP_BYTES,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self._spool = spool
        #: Told the number of batches of every successful commit (the group-size histogram).
        self._observe = observe
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._queue: deque[_Waiting] = deque()
        self._committer: asyncio.Task[None] | None = None
        #: Groups committed and batches in them, for the benchmark and the tests.
        self.groups = 0
        self.batches = 0

    async def append(self, cluster: str, body: bytes, event_count: int) -> int:
        """Store the batch durably with whatever else is waiting; returns its spool id once committed.

        Raises :class:`GroupCommitFailed` (its cause the store's error) when that commit failed.
        """
        waiting = _Waiting(SpoolEntry(cluster, body, event_count))
        self._queue.append(waiting)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_while_queued(), name="spool group commit")
        # The future is this request's alone: when the request gives up, it is cancelled, and a commit not yet
        # started leaves the batch out.
        return await waiting.done

    async def _commit_while_queued(self) -> None:
        while self._queue:
            group = self._take_group()
            if not group:
                continue
            try:
                # Not abandoned on cancel: a commit is never left running unobserved.
                ids = await anyio.to_thread.run_sync(self._spool.append_many, [w.entry for w in group])
            except Exception as exc:  # every request of the group learns it failed, whatever the error
                log.warning("spool group commit of %d batches failed: %s", len(group), type(exc).__name__)
                for waiting in group:
                    if not waiting.done.done():
                        failure = GroupCommitFailed(f"the spool commit failed: {type(exc).__name__}")
                        failure.__cause__ = exc
                        waiting.done.set_exception(failure)
                        waiting.done.exception()  # retrieved here: a request that gave up logs no warning
                continue
            self.groups += 1
            self.batches += len(group)
            if self._observe is not None:
                self._observe(len(group))
            for waiting, spool_id in zip(group, ids, strict=True):
                if not waiting.done.done():
                    waiting.done.set_result(spool_id)

    def _take_group(self) -> list[_Waiting]:
        """The oldest waiting batches within the bounds (always at least one), minus those given up on."""
        group: list[_Waiting] = []
        events = size = 0
        while self._queue:
            head = self._queue[0]
            if head.done.cancelled():
                self._queue.popleft()
                continue
            events += head.entry.event_count
            size += len(head.entry.body)
            if group and (events > self.max_events or size > self.max_bytes):
                break
            group.append(self._queue.popleft())
        return group
