"""process_batch's promises besides failures: stored once, order-safe handover, rejects, cluster-scoped keys."""

from __future__ import annotations

import itertools
import threading

import orjson
import pytest
from sqlalchemy import func, select

from batch.batches import cut, processor, stored, with_bad_timestamp
from batch.traffic import SETTINGS, comparable, decode, offline_scan, simulated
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import Pipeline
from kubeguard.store import schema
from kubeguard.store.database import open_engine


def _comparable(findings):
    return {key: comparable(value) for key, value in findings.items()}


def test_two_processes_taking_turns_on_each_cluster_agree_with_the_scan(db_url):
    """Workers hand clusters over: each must notice the other's commits and reload, never use stale memory."""
    pairs = simulated()
    engine_a, engine_b = open_engine(db_url), open_engine(db_url)
    workers = [processor(engine_a), processor(engine_b)]
    turns = itertools.cycle([0, 0, 1, 0, 1, 1, 1])
    for batch_id, cluster, body in cut(pairs, itertools.cycle([3000, 1200, 5000])):
        assert workers[next(turns)].process_batch(batch_id, cluster, body).processed
    assert _comparable(stored(engine_a)) == _comparable(offline_scan(pairs))
    engine_a.dispose()
    engine_b.dispose()


def test_processes_offered_the_same_batches_at_once_store_each_batch_once(db_url):
    """Two ``serve`` processes draining one spool: whichever claims a batch first stores it, the other skips it."""
    pairs = simulated()[:8000]
    batches = cut(pairs, itertools.cycle([400, 150]))
    engines = [open_engine(db_url) for _ in range(2)]
    results: list[list[bool]] = [[], []]
    errors: list[BaseException] = []

    def drain(index: int) -> None:
        worker = processor(engines[index])
        try:
            for batch_id, cluster, body in batches:
                results[index].append(worker.process_batch(batch_id, cluster, body).processed)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert [a + b for a, b in zip(*results, strict=True)] == [1] * len(batches), "each batch exactly once"
    with engines[0].connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.batches)).scalar_one() == len(batches)
    assert _comparable(stored(engines[0])) == _comparable(offline_scan(pairs))
    for engine in engines:
        engine.dispose()


def test_a_redelivered_batch_changes_nothing(db_url):
    pairs = simulated()
    engine = open_engine(db_url)
    worker = processor(engine)
    batches = cut(pairs, [9000, 9000, 9000])
    for batch_id, cluster, body in batches:
        worker.process_batch(batch_id, cluster, body)
    before = stored(engine)
    assert before
    again = processor(engine)  # a fresh process, as after a crash that lost the acknowledgement
    for batch_id, cluster, body in batches:
        result = again.process_batch(batch_id, cluster, body)
        assert not result.processed and not result.stored
    assert stored(engine) == before
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unreadable_timestamp_is_one_counted_reject_and_the_rest_of_the_batch_counts(db_url):
    pairs = list(simulated()[:3000])
    cluster = pairs[0][0]
    mine = [raw for name, raw in pairs if name == cluster]
    bad = next(i for i, raw in enumerate(mine) if i > 10 and orjson.loads(raw).get("stage") == "ResponseComplete")
    body_events = [*mine[:bad], with_bad_timestamp(mine[bad]), *mine[bad + 1 :]]
    body = b"\n".join([*body_events[:40], b"{not json", *body_events[40:]])
    engine = open_engine(db_url)
    result = processor(engine).process_batch("one", cluster, body)
    assert result.processed
    assert result.rejected == 2  # the line that is not JSON, and the event whose time cannot be read
    assert result.events == len(mine)
    good = [(cluster, raw) for raw in mine if raw != mine[bad]]
    scan = Pipeline(SETTINGS, MemoryState())
    for name, raw in good:
        scan.process_event(decode(name, raw))
    assert (result.counted, result.duplicates) == (scan.stats.counted, scan.stats.duplicates)
    assert result.counted > 500
    assert _comparable(stored(engine)) == _comparable(offline_scan(good))
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_same_audit_id_in_two_clusters_is_two_events_and_a_repeat_within_a_cluster_is_one(db_url):
    cluster, raw = next((c, r) for c, r in simulated() if orjson.loads(r).get("stage") == "ResponseComplete")
    engine = open_engine(db_url)
    worker = processor(engine)
    assert worker.process_batch("1", "east", raw).counted == 1
    assert worker.process_batch("2", "west", raw).counted == 1
    repeat = worker.process_batch("3", "east", raw)
    assert (repeat.counted, repeat.duplicates) == (0, 1)
    fresh = processor(engine)  # the window lives in the store: a restart still knows the key
    assert fresh.process_batch("4", "east", raw).duplicates == 1
    engine.dispose()
