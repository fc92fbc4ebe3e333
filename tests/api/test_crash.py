"""SIGKILL between acknowledgements: every batch the server acknowledged is stored and gets detected."""

from __future__ import annotations

import gzip
import threading
import time

import httpx
from sqlalchemy import select

from api.server import LAB_EVENTLISTS
from kubeguard.store import schema
from kubeguard.store.database import open_engine


def test_every_acknowledged_batch_survives_kill_9(make_server, db_url):
    with gzip.open(LAB_EVENTLISTS) as lines:
        batches = list(lines)
    server = make_server()
    acknowledged: dict[str, int] = {}
    stop = threading.Event()

    def sender() -> None:
        sequence = 0
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                cluster = f"c{sequence}"
                try:
                    response = client.post(
                        f"{server.url}/k8s-audit/{cluster}", content=batches[sequence % len(batches)]
                    )
                except httpx.TransportError:
                    return  # the server died with this request in flight: not acknowledged
                if response.status_code == 200:
                    acknowledged[cluster] = response.json()["accepted"]
                sequence += 1

    thread = threading.Thread(target=sender)
    thread.start()
    while len(acknowledged) < 25:
        time.sleep(0.01)
    server.kill()
    stop.set()
    thread.join(10)
    assert len(acknowledged) >= 25

    server.start()
    totals = server.wait_drained()
    engine = open_engine(db_url)
    with engine.connect() as conn:
        stored = {
            row.cluster: (row.event_count, row.done_at_ms, row.error)
            for row in conn.execute(
                select(
                    schema.spool.c.cluster, schema.spool.c.event_count, schema.spool.c.done_at_ms, schema.spool.c.error
                )
            )
        }
    engine.dispose()
    for cluster, events in acknowledged.items():
        count, done_at, error = stored[cluster]
        assert (count, error) == (events, None) and done_at is not None, cluster
    assert totals["batches_pending"] == 0
    assert totals["events"] >= sum(acknowledged.values())
    findings = httpx.get(f"{server.url}/api/findings", params={"limit": 1000}).json()["findings"]
    assert findings, "the replayed batches raised no finding"
