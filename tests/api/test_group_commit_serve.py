"""Group commit in a real ``kubeguard serve``: concurrent batches land once each, and a failed commit
fails every request of its group while keeping everything acknowledged (SQLite and PostgreSQL)."""

from __future__ import annotations

import gzip
import threading
import time
from contextlib import contextmanager

import httpx
from sqlalchemy import create_engine, func, select, text

from api.server import LAB_EVENTLISTS
from kubeguard.store import schema

MARKER = "kg-test-poison"


def tagged_batch(tag: str) -> bytes:
    """The lab's first EventList with auditIDs of its own, so each batch is told apart in the spool."""
    with gzip.open(LAB_EVENTLISTS) as lines:
        body = next(iter(lines))
    return body.replace(b'"auditID":"', f'"auditID":"{tag}-'.encode())


def post_all(url: str, bodies: dict[str, bytes], senders: int = 8) -> dict[str, httpx.Response]:
    """POST every body from ``senders`` threads at once; the responses by tag."""
    pending = list(bodies.items())
    responses: dict[str, httpx.Response] = {}
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if not pending:
                        return
                    tag, body = pending.pop()
                responses[tag] = client.post(f"{url}/k8s-audit/prod", content=body)

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def stored_tags(db_url: str, tags: list[str]) -> dict[str, int]:
    """How many spool rows hold each tag's batch."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = select(schema.spool_bodies.c.body).join(schema.spool, schema.spool.c.id == schema.spool_bodies.c.id)
            bodies = [bytes(body) for body in conn.execute(rows).scalars()]
    finally:
        engine.dispose()
    return {tag: sum(f'"auditID":"{tag}-'.encode() in body for body in bodies) for tag in tags}


def test_concurrent_batches_are_each_stored_and_detected_exactly_once(server, db_url):
    bodies = {f"batch{i:02d}": tagged_batch(f"batch{i:02d}") for i in range(24)}
    responses = post_all(server.url, bodies)
    assert {tag: r.status_code for tag, r in responses.items()} == dict.fromkeys(bodies, 200)
    assert {r.json()["accepted"] for r in responses.values()} == {229}
    totals = server.wait_drained()
    assert (totals["batches"], totals["events"], totals["batches_failed"]) == (24, 24 * 229, 0)
    assert stored_tags(db_url, list(bodies)) == dict.fromkeys(bodies, 1)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        done_marks = conn.execute(select(func.count()).select_from(schema.batches)).scalar_one()
    engine.dispose()
    assert done_marks == 24  # one detection transaction per batch, grouped or not
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "kubeguard_spool_commit_batches_sum 24.0" in metrics  # every batch went through a group commit


@contextmanager
def spool_writes_held(db_url: str):
    """Hold the spool's writes (SQLite's write lock, a PostgreSQL table lock) until the block ends."""
    holder = create_engine(db_url)
    with holder.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("BEGIN"))
            conn.execute(text("LOCK TABLE kg_spool IN EXCLUSIVE MODE"))  # readers still read
        try:
            yield
        finally:
            conn.exec_driver_sql("ROLLBACK")
    holder.dispose()


def install_poison_trigger(db_url: str) -> None:
    """Make the store refuse any spool body (and so its row: one transaction) that holds :data:`MARKER`: the injected commit failure."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER kg_test_poison BEFORE INSERT ON kg_spool_bodies "
                f"WHEN instr(NEW.body, CAST('{MARKER}' AS BLOB)) > 0 "
                "BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION kg_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF position(convert_to('{MARKER}', 'UTF8') IN NEW.body) > 0 THEN "
                "RAISE EXCEPTION 'injected commit failure'; END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER kg_test_poison BEFORE INSERT ON kg_spool_bodies FOR EACH ROW EXECUTE FUNCTION kg_test_poison()"
            )
    engine.dispose()


def test_a_failed_group_commit_fails_all_its_requests_and_loses_nothing_acknowledged(server, db_url):
    install_poison_trigger(db_url)
    first = {"first": tagged_batch("first")}
    group = {"clean-a": tagged_batch("clean-a"), "poisoned": tagged_batch(MARKER), "clean-b": tagged_batch("clean-b")}
    responses: dict[str, httpx.Response] = {}
    with spool_writes_held(db_url):
        # The first batch's commit starts and waits on the lock; the next three gather behind it, as one group.
        sender = threading.Thread(target=lambda: responses.update(post_all(server.url, first)))
        sender.start()
        time.sleep(1.5)
        grouped = threading.Thread(target=lambda: responses.update(post_all(server.url, group)))
        grouped.start()
        time.sleep(1.5)
    sender.join()
    grouped.join()
    assert responses["first"].status_code == 200
    for tag in group:
        assert responses[tag].status_code == 503, (tag, responses[tag].text)
        assert responses[tag].headers["retry-after"]
    # The API server resends what got a 503; the clean batches now land (the poisoned one never can).
    resent = post_all(server.url, {tag: group[tag] for tag in ("clean-a", "clean-b")})
    assert {tag: r.status_code for tag, r in resent.items()} == {"clean-a": 200, "clean-b": 200}
    totals = server.wait_drained()
    assert (totals["batches"], totals["batches_failed"]) == (3, 0)
    assert stored_tags(db_url, ["first", "clean-a", "clean-b", MARKER]) == {
        "first": 1,
        "clean-a": 1,
        "clean-b": 1,
        MARKER: 0,
    }
