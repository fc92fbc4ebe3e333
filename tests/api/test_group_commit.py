"""Group commit of webhook batches, on a spool whose commits the test holds and releases."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kubeguard.api.ingest.group_commit import GroupCommitFailed, GroupCommitter
from kubeguard.store.spool import SpoolEntry


class GatedSpool:
    """Records each commit's batches; every commit waits until the test opens the gate."""

    def __init__(self, fail_when: bytes | None = None) -> None:
        self.commits: list[list[bytes]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_when = fail_when
        self._ids = 0

    def append_many(self, entries: list[SpoolEntry]) -> list[int]:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail_when is not None and any(entry.body == self.fail_when for entry in entries):
            raise OSError("disk full")
        self.commits.append([entry.body for entry in entries])
        self._ids += len(entries)
        return list(range(self._ids - len(entries) + 1, self._ids + 1))


async def _wait_entered(spool: GatedSpool) -> None:
    for _ in range(500):
        if spool.entered.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no commit started")


def test_batches_arriving_during_a_commit_share_the_next_one():
    spool = GatedSpool()
    sizes: list[int] = []
    committer = GroupCommitter(spool, observe=sizes.append)

    async def scenario() -> list[int]:
        first = asyncio.create_task(committer.append("c", b"first", 1))
        await _wait_entered(spool)  # the first commit runs, alone
        rest = [asyncio.create_task(committer.append("c", f"b{i}".encode(), 1)) for i in range(5)]
        await asyncio.sleep(0.05)
        spool.gate.set()
        return await asyncio.gather(first, *rest)

    ids = asyncio.run(scenario())
    assert spool.commits == [[b"first"], [b"b0", b"b1", b"b2", b"b3", b"b4"]]
    assert ids == [1, 2, 3, 4, 5, 6]
    assert (committer.groups, committer.batches, sizes) == (2, 6, [1, 5])


def test_a_failed_commit_fails_every_request_of_its_group_and_only_those():
    spool = GatedSpool(fail_when=b"poison")
    committer = GroupCommitter(spool)

    async def scenario() -> list[object]:
        first = asyncio.create_task(committer.append("c", b"first", 1))
        await _wait_entered(spool)
        group = [asyncio.create_task(committer.append("c", body, 1)) for body in (b"a", b"poison", b"b")]
        await asyncio.sleep(0.05)
        spool.gate.set()
        results = await asyncio.gather(first, *group, return_exceptions=True)
        after = await committer.append("c", b"after", 1)  # the committer goes on after a failure
        return [*results, after]

    first, a, poison, b, after = asyncio.run(scenario())
    assert first == 1 and after == 2
    for failed in (a, poison, b):
        assert isinstance(failed, GroupCommitFailed) and isinstance(failed.__cause__, OSError)
    assert spool.commits == [[b"first"], [b"after"]]


def test_a_group_is_bounded_in_events_and_bytes():
    spool = GatedSpool()
    committer = GroupCommitter(spool, max_events=250, max_bytes=10_000)

    async def scenario() -> None:
        first = asyncio.create_task(committer.append("c", b"first", 1))
        await _wait_entered(spool)
        waiting = [asyncio.create_task(committer.append("c", bytes([65 + i]) * 10, 100)) for i in range(5)]
        waiting.append(asyncio.create_task(committer.append("c", b"x" * 20_000, 1)))  # alone over the byte bound
        waiting.append(asyncio.create_task(committer.append("c", b"y", 1)))
        await asyncio.sleep(0.05)
        spool.gate.set()
        await asyncio.gather(first, *waiting)

    asyncio.run(scenario())
    sizes = [[len(body) for body in commit] for commit in spool.commits]
    assert sizes == [[5], [10, 10], [10, 10], [10], [20_000], [1]]


def test_a_request_that_gave_up_before_its_commit_started_is_left_out():
    spool = GatedSpool()
    committer = GroupCommitter(spool)

    async def scenario() -> None:
        first = asyncio.create_task(committer.append("c", b"first", 1))
        await _wait_entered(spool)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await committer.append("c", b"gave-up", 1)
        kept = asyncio.create_task(committer.append("c", b"kept", 1))
        await asyncio.sleep(0.05)
        spool.gate.set()
        await asyncio.gather(first, kept)

    asyncio.run(scenario())
    assert spool.commits == [[b"first"], [b"kept"]]
