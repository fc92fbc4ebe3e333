"""Partition leases on PostgreSQL: fair shares, handover when a worker's session ends, fencing of commits."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from kubeguard.bus.ownership import LostOwnership, PartitionLeases
from kubeguard.store.database import open_engine


@pytest.fixture
def engine(pg_url):
    engine = open_engine(pg_url)
    yield engine
    engine.dispose()


def test_workers_share_partitions_fairly_and_take_over_a_dead_workers(engine):
    first, second = PartitionLeases(engine, 8), PartitionLeases(engine, 8)
    try:
        first.join()
        assert sorted(first.acquire_up_to_share()) == list(range(8))
        second.join()
        assert second.acquire_up_to_share() == []  # all held: the first must hand over its surplus
        surplus = first.surplus()
        assert len(surplus) == 4
        for partition in surplus:
            first.release(partition)
        assert sorted(second.acquire_up_to_share()) == sorted(surplus)
        assert first.owned.isdisjoint(second.owned) and len(first.owned | second.owned) == 8
        assert first.held() == first.owned

        first.leave()  # what PostgreSQL does when the worker's process dies: its session's locks go
        deadline = time.monotonic() + 5
        while len(second.owned) < 8 and time.monotonic() < deadline:
            second.acquire_up_to_share()  # the backend of the closed session ends a moment later
            time.sleep(0.05)
        assert sorted(second.owned) == list(range(8))
    finally:
        first.leave()
        second.leave()


def test_a_commit_is_fenced_to_the_partitions_owner(engine):
    owner, other = PartitionLeases(engine, 4), PartitionLeases(engine, 4)
    try:
        owner.join()
        other.join()
        owner.acquire_up_to_share()
        mine = sorted(owner.owned)[0]
        with engine.begin() as conn:
            owner.fence(conn, mine)
            with pytest.raises(LostOwnership):
                other.fence(conn, mine)
        owner.leave()
        with engine.begin() as conn, pytest.raises(LostOwnership):
            conn.execute(text("SELECT 1"))
            owner.fence(conn, mine)
    finally:
        owner.leave()
        other.leave()
