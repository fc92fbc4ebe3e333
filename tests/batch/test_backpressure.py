"""Backpressure: a bounded backlog, 503 with Retry-After past it, the lag on show, pruning in small steps.

The service runs in-process behind a real uvicorn listener with its drainer held back, so the backlog
grows exactly as the test sends; the test then drains it by hand and the webhook accepts again.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event

from batch.batches import cut
from batch.held import held_service as held
from batch.traffic import simulated
from kubeguard.store.database import now_ms, open_engine
from kubeguard.store.spool import PRUNE_STEP, Spool


@pytest.fixture
def held_service(db_url) -> Iterator[tuple[str, object, object]]:
    """A service whose drainer does not run: (url, context, drainer)."""
    with held(db_url, {"max_backlog_events": 3000, "max_backlog_bytes": 10**9, "retry_after_seconds": 7}) as service:
        yield service


def test_past_the_backlog_bound_the_webhook_answers_503_with_retry_after_until_detection_catches_up(held_service):
    url, context, drainer = held_service
    batches = cut(simulated()[:6000], [1000] * 6)
    accepted = 0
    with httpx.Client(timeout=30) as client:
        answers = []
        for _, cluster, body in batches:
            response = client.post(f"{url}/k8s-audit/{cluster}", content=body)
            answers.append(response.status_code)
            if response.status_code == 200:
                accepted += response.json()["accepted"]
            else:
                assert response.status_code == 503
                assert response.headers["retry-after"] == "7"
                assert "behind" in response.json()["message"]
        assert 200 in answers and 503 in answers
        assert 3000 <= accepted < 3000 + 1000 + 1, "the bound is exceeded by one batch at most"

        time.sleep(0.2)
        spool = client.get(f"{url}/api/spool").json()
        assert spool["events_pending"] == accepted and spool["bytes_pending"] > 0
        assert spool["lag_seconds"] > 0 and spool["max_backlog_events"] == 3000
        assert client.get(f"{url}/healthz/live").status_code == 200
        ready = client.get(f"{url}/healthz/ready")
        assert ready.status_code == 503 and any("backlog" in p for p in ready.json()["problems"])
        metrics = client.get(f"{url}/metrics").text
        assert f"kubeguard_spool_pending_events {float(accepted)}" in metrics
        assert 'kubeguard_webhook_batches_refused_total{reason="backlog"}' in metrics
        assert "kubeguard_spool_lag_seconds" in metrics and "kubeguard_spool_pending_bytes" in metrics

        while drainer.drain_once():
            pass
        time.sleep(0.6)  # the webhook's reading of the backlog is refreshed twice a second
        assert client.get(f"{url}/api/spool").json()["events_pending"] == 0
        # The backlog is gone; what still keeps it from ready is that this test holds the drainer back.
        assert client.get(f"{url}/healthz/ready").json()["problems"] == ["detection is not running"]
        _, cluster, body = batches[-1]
        assert client.post(f"{url}/k8s-audit/{cluster}", content=gzip.compress(body)).status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_drained_batches_are_pruned_in_small_transactions_and_kept_under_the_size_cap(db_url):
    engine = open_engine(db_url)
    spool = Spool(engine)
    ids = [spool.append("c", b"x" * 1000, 1) for _ in range(2 * PRUNE_STEP + 50)]
    pending = spool.append("c", b"y" * 1000, 1)
    with engine.begin() as conn:
        for batch_id in ids:
            Spool.mark_done(conn, batch_id)
    deleted: list[int] = []
    bodies_deleted: list[int] = []

    def count_deletes(_conn, clause, _multiparams, _params, _options, result) -> None:
        if result.context.isdelete:
            (bodies_deleted if clause.table.name == "kg_spool_bodies" else deleted).append(result.rowcount)

    event.listen(engine, "after_execute", count_deletes)

    kept = 60 * 1000
    pruned = spool.prune(now_ms() - 3_600_000, max_bytes=kept)  # nothing is old: only the cap prunes
    # 450 drained batches of 1000 bytes under a 60,000-byte cap: the oldest go, 200 per transaction.
    assert pruned == 2 * PRUNE_STEP
    assert spool.totals()["batches_done"] == len(ids) - 2 * PRUNE_STEP
    assert [n for n in deleted if n] == [PRUNE_STEP, PRUNE_STEP], "pruning is split into short transactions"
    assert [n for n in bodies_deleted if n] == [PRUNE_STEP, PRUNE_STEP], "each row's body goes with it"
    assert [b.id for b in spool.pending(10)] == [pending], "a pending batch is never pruned"

    assert spool.prune(now_ms() + 1) == len(ids) - 2 * PRUNE_STEP  # now all are past retention
    assert spool.totals()["batches_done"] == 0
    assert [b.id for b in spool.pending(10)] == [pending]
    engine.dispose()


class _CountingSpool:
    """A spool whose depth is whatever the test sets, counting the store reads."""

    def __init__(self, pending_events: int) -> None:
        self.pending_events = pending_events
        self.reads = 0

    def depth(self):
        from kubeguard.store.spool import SpoolDepth

        self.reads += 1
        return SpoolDepth(1, self.pending_events, 10)


def test_the_webhook_asks_the_backlog_without_a_store_read_while_the_last_reading_is_fresh():
    from kubeguard.api.ingest.backlog import REFRESH_SECONDS, Backlog

    now = [100.0]
    spool = _CountingSpool(10)
    backlog = Backlog(spool, max_events=100, max_bytes=10**6, clock=lambda: now[0])
    assert backlog.stale()
    assert backlog.full() is None and spool.reads == 1
    spool.pending_events = 500
    backlog.added(95, 1)  # this process's appends count at once, without reading
    assert not backlog.stale()
    assert "105 events wait" in backlog.full(refresh=False) and spool.reads == 1
    now[0] += REFRESH_SECONDS
    assert backlog.stale()
    assert "105 events wait" in backlog.full(refresh=False) and spool.reads == 1, "never a read when told not to"
    assert "500 events wait" in backlog.full() and spool.reads == 2
