"""SQLite's one writer, queued in the process: webhook appends wait on the engine's writer lock (not in
SQLite's busy handler), detection holds it until its transaction has committed, and the WAL is
checkpointed by the drainer between groups instead of inside a webhook commit."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event

from batch.batches import cut, processor
from batch.held import held_service
from batch.traffic import simulated
from kubeguard.api.ingest.checkpointer import Checkpointer
from kubeguard.store.database import WAL_AUTOCHECKPOINT_PAGES, open_engine
from kubeguard.store.spool import Spool
from kubeguard.store.writer import writer_lock

BODY = b'{"kind":"EventList","items":[' + b",".join([b'{"verb":"get","auditID":"%d"}' % i for i in range(20_000)]) + b"]}"


def _sqlite(tmp_path):
    return open_engine(f"sqlite:///{tmp_path / 'store.db'}")


def _pending(engine) -> int:
    return Spool(engine).depth().pending_batches


def test_an_append_waits_for_the_writer_lock_of_its_process(tmp_path):
    engine = _sqlite(tmp_path)
    spool = Spool(engine)
    lock = writer_lock(engine)
    finished = threading.Event()

    def append() -> None:
        spool.append("prod", b"[]", 0)
        finished.set()

    with lock:  # SQLite itself is free: only the process's queue holds the append back
        writer = threading.Thread(target=append)
        writer.start()
        writer.join(0.5)
        assert not finished.is_set() and _pending(engine) == 0
    writer.join(30)
    assert finished.is_set() and _pending(engine) == 1
    engine.dispose()


def test_the_finding_recorder_and_the_spool_share_one_writer_lock_per_engine(tmp_path):
    engine, other = _sqlite(tmp_path), open_engine(f"sqlite:///{tmp_path / 'other.db'}")
    assert processor(engine).recorder.lock is writer_lock(engine) is writer_lock(engine)
    assert writer_lock(other) is not writer_lock(engine)
    engine.dispose()
    other.dispose()


def test_detection_holds_the_writer_lock_until_its_commit(tmp_path):
    engine = _sqlite(tmp_path)
    worker = processor(engine)
    lock = writer_lock(engine)
    free_at_commit: list[bool] = []

    def probe() -> None:
        # Asked from another thread while the commit is issued: an append would get the lock now.
        acquired = lock.acquire(blocking=False)
        if acquired:
            lock.release()
        free_at_commit.append(acquired)

    @event.listens_for(engine, "commit")
    def on_commit(_conn) -> None:
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()

    (batch_id, cluster, body), *_ = cut(simulated()[:400], [400])
    assert worker.process_batch(batch_id, cluster, body).processed
    assert free_at_commit == [False]
    assert lock.acquire(blocking=False)  # and let go after it
    lock.release()
    engine.dispose()


def test_webhook_commits_leave_the_wal_to_the_drainers_checkpoint(tmp_path):
    engine = _sqlite(tmp_path)
    spool = Spool(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT_PAGES
    for _ in range(12):  # about 2,000 pages: past SQLite's default threshold of 1,000, under ours
        spool.append("prod", BODY, 20_000)
    frames, copied = spool.checkpoint()
    assert frames > 1000, "no commit checkpointed the WAL (it would have started over)"
    assert copied == frames
    engine.dispose()


def test_the_drainer_asks_for_a_checkpoint_after_each_group(tmp_path, monkeypatch):
    with held_service(f"sqlite:///{tmp_path / 'kg.db'}", {}) as (_url, context, drainer):
        asked = []
        monkeypatch.setattr(drainer.checkpointer, "request", lambda: asked.append(1))
        batches = cut(simulated()[:800], [400, 400])
        for _, cluster, body in batches:
            context.spool.append(cluster, body, 400)
        assert drainer.drain_once() == len(batches)
        assert asked == [1]
        assert drainer.drain_once() == 0 and asked == [1]


def test_postgresql_has_no_checkpointer(db_url):
    with held_service(db_url, {}) as (_url, _context, drainer):
        assert (drainer.checkpointer is None) == db_url.startswith("postgresql")


def test_the_checkpointer_runs_in_its_own_thread_once_more_for_the_requests_made_while_it_ran():
    running, release = threading.Event(), threading.Event()
    threads: list[str] = []

    def checkpoint() -> None:
        threads.append(threading.current_thread().name)
        running.set()
        release.wait(30)

    checkpointer = Checkpointer(checkpoint)
    checkpointer.start()
    checkpointer.request()
    assert running.wait(30)
    for _ in range(5):
        checkpointer.request()
    release.set()
    deadline = time.monotonic() + 30
    while checkpointer.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    checkpointer.stop()
    assert checkpointer.runs == 2
    assert threads == ["wal checkpoint", "wal checkpoint"]
