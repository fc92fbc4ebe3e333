"""Detection in groups: batches waiting together are detected in one transaction, with the same results.

A group holds every part's done mark, so it is stored whole or not at all; a part another process stored
first is left out; the results equal detecting the batches one at a time (and the offline scan). The
spool drainer takes whatever waits, up to its bounds, in one group; after a group fails it goes one batch
per transaction until past it, so a batch that cannot be detected is still found and marked failed alone.
"""

from __future__ import annotations

import itertools
import math
import threading
import time

import httpx
import pytest
from sqlalchemy import event, select

from batch.batches import cut, processor, state_rows, stored
from batch.faults import Faults, InjectedFault
from batch.held import held_service
from batch.traffic import SETTINGS_TOML, comparable, offline_scan, simulated
from kubeguard.api.ingest.drainer import MAX_GROUP_EVENTS, SpoolDrainer, spool_batch_id
from kubeguard.api.metrics import ServiceMetrics
from kubeguard.audit.decode import decode_bytes
from kubeguard.batch.processor import BatchPart, StateReadFailed
from kubeguard.batch.state import unpack_keys
from kubeguard.store import schema
from kubeguard.store.database import open_engine
from kubeguard.store.spool import Spool, SpoolEntry


def _comparable(findings):
    return {key: comparable(value) for key, value in findings.items()}


def same_state(engine) -> dict:
    """Every piece of detector state, with the de-duplication runs (one row per transaction and cluster, so
    cut where the transactions were) flattened into each cluster's keys and positions, and its clock."""
    rows = state_rows(engine)
    keys, clocks = set(), {}
    for cluster, last, digests in rows.pop("event_keys"):
        flat = unpack_keys(digests)
        keys.update((cluster, key, position) for key, position in zip(flat[::2], flat[1::2], strict=True))
        clocks[cluster] = max(clocks.get(cluster, 0), last)
    return {**rows, "event_keys": sorted(keys), "clocks": clocks}


def part(batch_id: str, cluster: str, body: bytes) -> BatchPart:
    decoded = decode_bytes(body, cluster=cluster)
    return BatchPart(batch_id, cluster, decoded.events, len(decoded.rejects))


def reference(url, batches):
    """A store that detected ``batches`` one per transaction."""
    engine = open_engine(url)
    worker = processor(engine)
    for batch_id, cluster, body in batches:
        assert worker.process_batch(batch_id, cluster, body).processed
    return engine


def test_groups_store_what_one_batch_at_a_time_stores_and_leave_out_batches_stored_before(db_url, tmp_path):
    pairs = simulated()[:12000]
    batches = cut(pairs, itertools.cycle([500, 900, 40]))
    engine = open_engine(db_url)
    worker = processor(engine)
    for batch_id, cluster, body in batches[:3]:  # as if another process had stored these first
        assert worker.process_batch(batch_id, cluster, body).processed
    told: list[list[str]] = []
    result = worker.process_batches(
        [part(*batch) for batch in batches[1:8]], within=lambda _conn, parts: told.append([p.batch_id for p in parts])
    )
    assert result.processed and result.done == [batch[0] for batch in batches[3:8]]
    assert told == [result.done], "within is told the parts this transaction stores, not those stored before"
    before = state_rows(engine)
    again = worker.process_batches([part(*batch) for batch in batches[2:6]])
    assert not again.processed and again.done == []
    assert state_rows(engine) == before, "a group stored before changes nothing"
    for start in range(8, len(batches), 4):
        assert worker.process_batches([part(*batch) for batch in batches[start : start + 4]]).processed

    with engine.connect() as conn:
        marks = dict(conn.execute(select(schema.batches.c.batch_id, schema.batches.c.events)).all())
    assert marks == {batch_id: len(body.splitlines()) for batch_id, _, body in batches}, "one mark per batch"
    sqlite_path = tmp_path / "reference"
    sqlite_path.mkdir()
    one_by_one = reference(f"sqlite:///{sqlite_path}/ref.db", batches)
    assert same_state(engine) == same_state(one_by_one)
    assert _comparable(stored(engine)) == _comparable(stored(one_by_one)) == _comparable(offline_scan(pairs))
    engine.dispose()
    one_by_one.dispose()


def test_a_failed_group_stores_none_of_its_batches_and_its_retry_gives_the_uninterrupted_result(db_url, tmp_path):
    pairs = simulated()[:9000]
    batches = cut(pairs, itertools.cycle([600, 250]))
    groups = [batches[i : i + 3] for i in range(0, len(batches), 3)]
    engine = open_engine(db_url)
    faults = Faults(engine)
    current = processor(engine)
    for index, group in enumerate(groups):
        commit = index % 3 == 2
        faults.arm(statement=None if commit else index % 4, commit=commit)  # a group has more statements
        with pytest.raises((InjectedFault, StateReadFailed)):
            current.process_batches([part(*batch) for batch in group])
        with engine.connect() as conn:
            ids = [batch[0] for batch in group]
            assert not conn.scalars(select(schema.batches.c.batch_id).where(schema.batches.c.batch_id.in_(ids))).all()
        if index % 2:
            current = processor(engine)  # a restart
        faults.arm()
        assert current.process_batches([part(*batch) for batch in group]).done == [batch[0] for batch in group]
    assert faults.fired.count("commit") == len(range(2, len(groups), 3))
    assert faults.fired.count("statement") == len(groups) - faults.fired.count("commit")
    (tmp_path / "reference").mkdir()
    one_by_one = reference(f"sqlite:///{tmp_path}/reference/ref.db", batches)
    assert same_state(engine) == same_state(one_by_one)
    assert _comparable(stored(engine)) == _comparable(offline_scan(pairs))
    engine.dispose()
    one_by_one.dispose()


def test_a_webhook_backlog_drains_in_groups_one_transaction_each_with_the_findings_of_the_scan(db_url):
    pairs = simulated()
    batches = cut(pairs, itertools.cycle([700]))
    with held_service(db_url, {"max_backlog_events": 10**7, "max_backlog_bytes": 10**10}) as (url, context, drainer):
        with httpx.Client(timeout=60) as client:
            for _, cluster, body in batches:
                assert client.post(f"{url}/k8s-audit/{cluster}", content=body).status_code == 200
        commits: list[int] = []
        event.listen(context.engine, "commit", lambda _conn: commits.append(1))
        taken: list[int] = []
        while taken_now := drainer.drain_once():
            taken.append(taken_now)
        assert sum(taken) == len(batches)
        assert len(commits) == len(taken), "one transaction per group"
        assert len(taken) == math.ceil(len(pairs) / MAX_GROUP_EVENTS), "each group as large as the bound allows"
        # Nothing drained while the webhook took them: the handoff kept batches up to its bound, the drainer
        # decoded the others from the spool.
        held = left = 0
        for _, _, body in batches:
            if held + len(body.splitlines()) <= drainer.handoff.max_events:
                held += len(body.splitlines())
                left += 1
        assert 0 < left < len(batches)
        assert (drainer.handoff.taken, drainer.handoff.missed, len(drainer.handoff)) == (left, len(batches) - left, 0)
        totals = context.spool.totals()
        assert totals["batches_done"] == len(batches) and totals["batches_failed"] == 0
        with context.engine.connect() as conn:
            marks = dict(conn.execute(select(schema.batches.c.batch_id, schema.batches.c.events)).all())
            spooled = dict(conn.execute(select(schema.spool.c.id, schema.spool.c.event_count)).all())
        assert marks == {spool_batch_id(key): count for key, count in spooled.items()}
        found = {f["id"]: comparable(f) for f in stored(context.engine).values()}
        assert found == _comparable(offline_scan(pairs, sequences=True))
        metrics = httpx.get(f"{url}/metrics").text
        assert f"kubeguard_detection_group_batches_sum {float(len(batches))}" in metrics
        assert f'kubeguard_detection_batches_decoded_total{{by="webhook"}} {float(left)}' in metrics
        assert f'kubeguard_detection_batches_decoded_total{{by="drainer"}} {float(len(batches) - left)}' in metrics


class Poisoned:
    """A processor that records each group it is offered (its batch ids, in ``offered``, and when, in
    ``times``) and fails every group holding the poisoned batch, if any (detection raising on it, say)."""

    def __init__(self, inner, poisoned: str | None = None) -> None:
        self.inner, self.poisoned, self.offered, self.times = inner, poisoned, [], []

    def process_batches(self, parts, within=None):
        self.offered.append([p.batch_id for p in parts])
        self.times.append(time.monotonic())
        if any(p.batch_id == self.poisoned for p in parts):
            raise RuntimeError("poisoned batch")
        return self.inner.process_batches(parts, within)

    def prune_done(self, horizon: int) -> None:
        self.inner.prune_done(horizon)

    def close(self) -> None:
        self.inner.close()


def test_after_a_group_fails_its_batches_go_alone_so_only_the_bad_one_is_marked_failed(db_url):
    engine = open_engine(db_url)
    spool = Spool(engine)
    batches = cut(simulated()[:3000], [300] * 10)
    ids = spool.append_many([SpoolEntry(cluster, body, len(body.splitlines())) for _, cluster, body in batches[:6]])
    poisoned = Poisoned(processor(engine), spool_batch_id(ids[3]))
    drainer = SpoolDrainer(spool, poisoned, ServiceMetrics(), retention_seconds=3600)
    raised = 0
    for _ in range(20):
        try:
            if not drainer.drain_once():
                break
        except RuntimeError:
            raised += 1
    names = [spool_batch_id(i) for i in ids]
    attempts = 5  # MAX_ATTEMPTS: the fifth failure alone marks the batch failed instead of raising
    assert poisoned.offered == [names, *([n] for n in names[:3]), *[[names[3]]] * attempts, [names[4]], [names[5]]]
    assert raised == 1 + attempts - 1
    totals = spool.totals()
    assert totals["batches_done"] == 6 and totals["batches_failed"] == 1 and totals["batches_pending"] == 0
    later = spool.append_many([SpoolEntry(cluster, body, len(body.splitlines())) for _, cluster, body in batches[6:]])
    assert drainer.drain_once() == len(later), "past the failed group, waiting batches are grouped again"
    assert poisoned.offered[-1] == [spool_batch_id(i) for i in later]
    engine.dispose()


def test_a_group_is_bounded_by_events_and_always_takes_one_batch(db_url):
    engine = open_engine(db_url)
    spool = Spool(engine)
    spool.append_many([SpoolEntry("c", b"{}", 3000), SpoolEntry("c", b"{}", 3000), SpoolEntry("c", b"{}", 3000)])
    spool.append("c", b"{}", 20_000)
    sizes = []
    for _ in range(3):
        group = spool.pending_group(max_batches=64, max_events=8000, max_bytes=10**9)
        sizes.append([batch.event_count for batch in group])
        with engine.begin() as conn:
            Spool.mark_many_done(conn, [batch.id for batch in group])
    assert sizes == [[3000, 3000], [3000], [20_000]]
    assert spool.pending_group(max_batches=64, max_events=8000, max_bytes=10**9) == []
    engine.dispose()


def test_serve_under_a_burst_detects_every_batch_once_as_the_scan_does(make_server):
    """A real ``kubeguard serve``: two clusters' API servers send as fast as they are answered (one request at a
    time each), detection runs behind them in groups, and the findings equal the offline scan."""
    pairs = simulated()
    batches = cut(pairs, itertools.cycle([400]))
    server = make_server(SETTINGS_TOML)
    by_cluster: dict[str, list[bytes]] = {}
    for _, cluster, body in batches:
        by_cluster.setdefault(cluster, []).append(body)

    def send(cluster: str) -> None:
        with httpx.Client(timeout=60) as client:
            for body in by_cluster[cluster]:
                assert client.post(f"{server.url}/k8s-audit/{cluster}", content=body).status_code == 200

    threads = [threading.Thread(target=send, args=(cluster,)) for cluster in by_cluster]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    totals = server.wait_drained(timeout=120)
    assert totals["batches_done"] == len(batches) and totals["batches_failed"] == 0
    metrics = httpx.get(f"{server.url}/metrics").text
    assert f"kubeguard_detection_group_batches_sum {float(len(batches))}" in metrics
    decoded = {
        line.split('"')[1]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("kubeguard_detection_batches_decoded_total{")
    }
    assert sum(decoded.values()) == len(batches) and decoded["webhook"] > 0
    found = httpx.get(f"{server.url}/api/findings", params={"limit": 1000}, timeout=30).json()["findings"]
    assert {f["id"]: comparable(f) for f in found} == _comparable(offline_scan(pairs, sequences=True))


def test_the_drainer_detects_a_lone_batch_at_once_and_lets_the_next_group_fill_under_a_stream(db_url):
    engine = open_engine(db_url)
    spool = Spool(engine)
    batches = cut(simulated()[:2400], [300] * 8)
    recording = Poisoned(processor(engine))
    drainer = SpoolDrainer(spool, recording, ServiceMetrics(), retention_seconds=3600)
    drainer.linger_seconds = 3.0  # long enough for the stream below to land whole on a loaded machine
    drainer.start()
    try:
        _, cluster, body = batches[0]
        landed = time.monotonic()
        first = spool.append(cluster, body, len(body.splitlines()))
        drainer.wake()
        deadline = time.monotonic() + 10
        while not recording.offered and time.monotonic() < deadline:
            time.sleep(0.005)
        detected, group = recording.times[0], recording.offered[0]
        assert group == [spool_batch_id(first)]
        assert detected - landed < 2.5, "after a quiet spell a batch is detected without the linger"
        # A stream: the next batches land one by one while the drainer lingers after the first group.
        later = []
        for _, cluster, body in batches[1:]:
            later.append(spool.append(cluster, body, len(body.splitlines())))
            drainer.wake()
            time.sleep(0.02)
        while len(recording.offered) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        drainer.stop()
    assert recording.offered[1] == [spool_batch_id(i) for i in later], "the lingering drainer took them as one group"
    assert spool.totals()["batches_done"] == len(batches)
    engine.dispose()


class RacingSpool(Spool):
    """A spool where a batch lands, and the drainer is told of it, while the drainer reads the backlog's depth
    after a group: the read misses the batch, and only the telling counts it."""

    def __init__(self, engine, land) -> None:
        super().__init__(engine)
        self.land = land  # called once, from the first depth read after a group was offered

    def depth(self):
        found = super().depth()
        if self.land is not None and self.land():
            self.land = None
        return found


def test_the_linger_ends_once_a_full_group_waits_even_when_a_batch_lands_during_the_depth_read(db_url):
    engine = open_engine(db_url)
    batches = cut(simulated()[:3000], [300] * 10)[:3]
    sizes = [len(body.splitlines()) for _, _, body in batches]
    recording = Poisoned(processor(engine))
    holder: dict = {}
    landed: list[int] = []

    def land() -> bool:
        if not recording.offered:
            return False
        _, cluster, body = batches[1]
        landed.append(spool.append(cluster, body, sizes[1]))
        holder["drainer"].wake(sizes[1])  # as the webhook does, with the batch's events
        return True

    spool = RacingSpool(engine, land)
    drainer = holder["drainer"] = SpoolDrainer(spool, recording, ServiceMetrics(), retention_seconds=3600)
    # A full group is what the second and third batches hold together, not what either holds alone.
    drainer.linger_seconds, drainer.max_group_events = 30.0, sizes[1] + sizes[2]
    drainer.start()
    try:
        deadline = time.monotonic() + 20
        _, cluster, body = batches[0]
        first = spool.append(cluster, body, sizes[0])
        drainer.wake(sizes[0])
        while not landed and time.monotonic() < deadline:
            time.sleep(0.005)
        _, cluster, body = batches[2]
        third = spool.append(cluster, body, sizes[2])
        told = time.monotonic()
        drainer.wake(sizes[2])
        while len(recording.offered) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        drainer.stop()
    assert recording.offered == [[spool_batch_id(first)], [spool_batch_id(landed[0]), spool_batch_id(third)]]
    assert recording.times[1] - told < 10, "the second group did not wait out the 30 s linger"
    engine.dispose()


class TwiceRacingSpool(Spool):
    """A spool where the first batch lands between the drainer's reading of what it was told and its reading
    of the depth (so the depth and the telling both count it), and the second lands, and is told of, during
    the depth read after the first group."""

    def __init__(self, engine, land_first, land_second) -> None:
        super().__init__(engine)
        self.lands = [land_first, land_second]

    def depth(self):
        if len(self.lands) == 2:
            self.lands.pop(0)()
            return super().depth()
        found = super().depth()
        if self.lands and self.lands[0]():
            self.lands.pop(0)
        return found


def test_a_batch_counted_twice_before_a_group_does_not_end_the_next_linger_early(db_url):
    """The count of what waits after a group must not carry the last round's double count: here it did, and
    a wake during the depth read found the group full with one batch of the two it needs."""
    engine = open_engine(db_url)
    one_cluster = [pair for pair in simulated() if pair[0] == "prod-use1"][:600]
    batches = cut(one_cluster, [200] * 3)
    sizes = [len(body.splitlines()) for _, _, body in batches]
    assert len(set(sizes)) == 1
    recording = Poisoned(processor(engine))
    holder: dict = {}
    ids: list[int] = []

    def land(number: int) -> None:
        _, cluster, body = batches[number]
        ids.append(spool.append(cluster, body, sizes[number]))
        holder["drainer"].wake(sizes[number])

    def land_second() -> bool:
        if not recording.offered:
            return False
        land(1)
        return True

    spool = TwiceRacingSpool(engine, lambda: land(0), land_second)
    drainer = holder["drainer"] = SpoolDrainer(spool, recording, ServiceMetrics(), retention_seconds=3600)
    drainer.linger_seconds, drainer.max_group_events = 30.0, sizes[1] + sizes[2]
    drainer.start()
    try:
        deadline = time.monotonic() + 20
        while len(ids) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.2)  # the drainer lingers now, for the second and third batches together
        land(2)
        while len(recording.offered) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        drainer.stop()
    assert recording.offered == [[spool_batch_id(ids[0])], [spool_batch_id(ids[1]), spool_batch_id(ids[2])]]
    engine.dispose()
