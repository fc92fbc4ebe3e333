"""A source's cursor and the batch it covers are one commit: both are stored, or neither is."""

from __future__ import annotations

import pytest

from kubeguard.store import source_cursors
from kubeguard.store.source_cursors import SeenEvent
from kubeguard.store.spool import Spool


@pytest.fixture
def engine(store_engine):
    return store_engine


def test_a_failed_cursor_write_leaves_no_batch_behind(engine):
    spool = Spool(engine)

    def broken(conn) -> None:
        source_cursors.save_position(conn, "cloudwatch:g", {"read_to_ms": 5})
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        spool.append("c", b'{"auditID":"a"}', 1, also=broken)
    assert spool.totals()["batches"] == 0
    assert source_cursors.load_position(engine, "cloudwatch:g") is None


def test_batch_position_and_seen_ids_commit_together_and_age_out(engine):
    spool = Spool(engine)

    def cursor(conn) -> None:
        source_cursors.save_position(conn, "cloudwatch:g", {"read_to_ms": 5})
        source_cursors.add_seen(conn, "cloudwatch:g", [SeenEvent("e1", "a/ResponseComplete", 100), SeenEvent("e2", None, 200)])

    spool.append("c", b'{"auditID":"a"}', 1, also=cursor)
    with engine.begin() as conn:
        source_cursors.save_position(conn, "cloudwatch:g", {"read_to_ms": 9})
        source_cursors.forget_seen_before(conn, "cloudwatch:g", 150)
    assert spool.totals()["batches"] == 1
    assert source_cursors.load_position(engine, "cloudwatch:g") == {"read_to_ms": 9}
    assert source_cursors.load_seen(engine, "cloudwatch:g") == [SeenEvent("e2", None, 200)]
    assert source_cursors.load_seen(engine, "file:/other") == []
