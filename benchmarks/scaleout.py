"""Scale-out throughput: ``serve --bus`` with 1 and 2 workers against the single-process service, same run.

Everything runs on this machine, on PostgreSQL and a private ``nats-server -js``, fresh for each setup:

* **single**: ``kubeguard serve --db postgresql://...`` — the webhook spools, the drainer detects;
* **bus, N workers**: ``kubeguard serve --bus`` publishes, N ``kubeguard worker`` processes detect.

For each setup the same simulated clusters (their audit events as webhook EventLists) are posted as fast as
one client can, and the clock runs until the last batch is committed: end-to-end events/s. The bus setups
are posted with the workers stopped first (the ingest rate of ``serve --bus`` alone), then the workers are
started and the drain is timed from the moment they hold their partitions (the workers' detection rate).
Also measured: what JetStream's acknowledged publish costs per batch against the single-process spool's
commit, PostgreSQL's commits and row writes per event, and the memory of a worker holding 10,000
principals. The printout ends with the worker-count model for a target rate (``--target``).

Run: ``.venv/bin/python benchmarks/scaleout.py [--clusters 4] [--days 1] [--target 50000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from api.server import Server  # noqa: E402
from bus.natsserver import private_nats  # noqa: E402
from bus.processes import WorkerProcess, wait_bus_drained  # noqa: E402
from store.databases import POSTGRES_DSN, database_url  # noqa: E402

from kubeguard.bus.chunking import split_batch  # noqa: E402
from kubeguard.sim.simulator import SimConfig, Simulator, cluster_names  # noqa: E402

CONFIG = """
[intel]
use_default_feeds = false

[serve]
max_backlog_events = 10000000
max_backlog_bytes = 4294967296
"""


def simulate(clusters: int, days: float) -> dict[str, list[bytes]]:
    simulator = Simulator(
        SimConfig(
            seed=11,
            duration=timedelta(days=days),
            learning=timedelta(days=days) - timedelta(hours=4),
            clusters=cluster_names(clusters),
            attacks=["all"],
            scale=0.01,
        )
    )
    lines: dict[str, list[bytes]] = {}
    for cluster, event in simulator.stream():
        lines.setdefault(cluster, []).append(orjson.dumps(event))
    return lines


def event_lists(lines: dict[str, list[bytes]], size: int) -> list[tuple[str, bytes, int]]:
    """(cluster, body, events), clusters interleaved as several API servers would send them."""
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
    per_cluster = {
        cluster: [(cluster, head + b",".join(rows[i : i + size]) + b"]}", len(rows[i : i + size]))
                  for i in range(0, len(rows), size)]
        for cluster, rows in lines.items()
    }
    longest = max(len(batches) for batches in per_cluster.values())
    return [batches[n] for n in range(longest) for batches in per_cluster.values() if n < len(batches)]


def post_all(url: str, batches: list[tuple[str, bytes, int]], clients: int = 4) -> float:
    """Post every batch (several clients, each cluster's batches in order by one client); returns seconds."""
    lanes: dict[int, list[tuple[str, bytes, int]]] = {}
    clusters = sorted({cluster for cluster, _, _ in batches})
    for batch in batches:
        lanes.setdefault(clusters.index(batch[0]) % clients, []).append(batch)

    def send(lane: list[tuple[str, bytes, int]]) -> None:
        with httpx.Client(timeout=60) as client:
            for cluster, body, _ in lane:
                while True:
                    response = client.post(f"{url}/k8s-audit/{cluster}", content=body)
                    if response.status_code == 200:
                        break
                    if response.status_code != 503:
                        raise RuntimeError(response.text)
                    time.sleep(0.2)

    started = time.perf_counter()
    threads = [threading.Thread(target=send, args=(lane,)) for lane in lanes.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


def pg_writes(schema: str) -> tuple[int, int]:
    """(0, rows inserted+updated+deleted) in this benchmark's schema so far (the statistics lag a little)."""
    time.sleep(0.7)  # PostgreSQL publishes table statistics about every 500 ms
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE schemaname = %s",
            (schema,),
        ).fetchone()[0]
        return 0, int(rows)


def wait_spool_drained(url: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/api/spool", timeout=30).json()["batches_pending"] == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("spool not drained")


def run_single(batches, events: int, workdir: Path) -> dict[str, float]:
    with database_url("postgresql", workdir) as db:
        server = Server(db, workdir, CONFIG).start()
        try:
            before = pg_writes(schema_of(db))
            started = time.perf_counter()
            post_all(server.url, batches)
            wait_spool_drained(server.url)
            seconds = time.perf_counter() - started
            after = pg_writes(schema_of(db))
        finally:
            server.stop()
    return {"events_per_s": events / seconds, "rows_per_event": (after[1] - before[1]) / events}


def run_bus(batches, events: int, workers: int, workdir: Path) -> dict[str, float]:
    with ExitStack() as stack:
        db = stack.enter_context(database_url("postgresql", workdir))
        bus = stack.enter_context(private_nats(workdir / f"js-{workers}"))
        server = Server(db, workdir, CONFIG, extra_args=["--bus", bus]).start()
        stack.callback(server.stop)
        ingest_seconds = post_all(server.url, batches)
        before = pg_writes(schema_of(db))
        procs = [WorkerProcess(db, bus, workdir, f"bench-w{workers}-{n}") for n in range(workers)]
        for proc in procs:
            proc.start()
            stack.callback(proc.stop)
        while not all("took partitions" in proc.log() for proc in procs):
            time.sleep(0.05)
        started = time.perf_counter()
        status = wait_bus_drained(server.url, timeout=900)
        seconds = time.perf_counter() - started
        after = pg_writes(schema_of(db))
    return {
        "ingest_events_per_s": events / ingest_seconds,
        "events_per_s": events / seconds,
        # One store transaction per bus message (a batch over NATS's max_payload travels as several).
        "commits_per_event": status["batches_done"] / events,
        "rows_per_event": (after[1] - before[1]) / events,
    }


async def _publish_cost(url: str, body: bytes, rounds: int) -> float:
    from kubeguard.bus.publisher import BusPublisher

    publisher = BusPublisher(url)
    await publisher.start()
    try:
        samples = []
        for n in range(rounds):
            piece = body + b" " * n  # a distinct digest each time, so JetStream stores every one
            started = time.perf_counter()
            await publisher.publish("bench", piece, 1000)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)
    finally:
        await publisher.close()


def publish_costs(body: bytes, workdir: Path, rounds: int = 200) -> tuple[float, float]:
    """Median seconds per batch: JetStream publish with ack, and the single-process spool commit (PostgreSQL)."""
    from kubeguard.store.database import open_engine
    from kubeguard.store.spool import Spool

    with private_nats(workdir / "js-publish") as bus:
        jetstream = asyncio.run(_publish_cost(bus, body, rounds))
    with database_url("postgresql", workdir) as db:
        engine = open_engine(db)
        spool = Spool(engine)
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            spool.append("bench", body, 1000)
            samples.append(time.perf_counter() - started)
        engine.dispose()
    return jetstream, statistics.median(samples)


MEMORY_PROBE = """
import os, sys, orjson
from kubeguard.batch.processor import BatchProcessor
from kubeguard.config import Settings
from kubeguard.store.database import open_engine
from kubeguard.store.recorder import FindingRecorder

def rss():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmRSS')) * 1024

engine = open_engine(sys.argv[1])
processor = BatchProcessor(engine, Settings(), FindingRecorder(engine))
principals, per = int(sys.argv[2]), 6
def event(n, user):
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"m-{n}", "stage": "ResponseComplete",
            "verb": ("get", "list", "watch", "create", "update", "delete")[n % 6],
            "requestURI": f"/api/v1/namespaces/ns{n % 40}/pods", "user": {"username": user, "groups": ["dev"]},
            "sourceIPs": [f"10.{n % 200}.{n % 7}.{n % 250}"], "userAgent": "kubectl/v1.30",
            "objectRef": {"resource": ("pods", "secrets", "configmaps")[n % 3], "namespace": f"ns{n % 40}"},
            "responseStatus": {"code": 200},
            "stageTimestamp": f"2026-01-05T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000000Z"}
before = rss()
n = 0
for start in range(0, principals, 500):
    rows = []
    for p in range(start, min(start + 500, principals)):
        for _ in range(per):
            rows.append(orjson.dumps(event(n, f"user-{p}@example.com")))
            n += 1
    body = b'{"kind":"EventList","items":[' + b",".join(rows) + b"]}"
    processor.process_batch(f"mem:{start}", "memory", body)
held = sum(len(c.principals) for c in processor.baselines.clusters.values())
print(held, rss() - before)
"""


def worker_memory(principals: int, workdir: Path) -> tuple[int, int]:
    with database_url("postgresql", workdir) as db:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, db, str(principals)],
            capture_output=True, text=True, check=True, env=dict(os.environ),
        ).stdout.split()
    return int(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=1000, help="events per webhook EventList")
    parser.add_argument("--target", type=int, default=50_000, help="fleet events/s for the worker-count model")
    parser.add_argument("--principals", type=int, default=10_000)
    args = parser.parse_args()

    lines = simulate(args.clusters, args.days)
    events = sum(len(rows) for rows in lines.values())
    batches = event_lists(lines, args.batch)
    print(f"{events:,} events of {args.clusters} clusters in {len(batches)} EventLists of {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "kubeguard.toml").write_text(CONFIG)
        single = run_single(batches, events, work)
        print(f"single process (serve, PostgreSQL): {single['events_per_s']:,.0f} events/s end to end")
        results = {}
        for workers in (1, 2):
            results[workers] = bus = run_bus(batches, events, workers, work)
            print(
                f"serve --bus + {workers} worker(s): {bus['events_per_s']:,.0f} events/s detection "
                f"({bus['events_per_s'] / single['events_per_s']:.2f}x single); serve --bus ingest "
                f"{bus['ingest_events_per_s']:,.0f} events/s; PostgreSQL: {bus['commits_per_event'] * 1000:.1f} "
                f"batch transactions per 1,000 events, {bus['rows_per_event']:.2f} row writes per event"
            )
        body = batches[0][1]
        jetstream, spool = publish_costs(body, work)
        pieces = len(split_batch(body, 1024 * 1024, 0))
        print(
            f"publish one {len(body) / 1024:.0f} KiB batch ({pieces} NATS message(s) at the default 1 MiB "
            f"max_payload): JetStream with ack {jetstream * 1000:.2f} ms, "
            f"spool commit on PostgreSQL {spool * 1000:.2f} ms ({jetstream / spool:.2f}x)"
        )
        held, grown = worker_memory(args.principals, work)
        each = grown / max(held, 1) / 1024
        print(f"worker memory for {held:,} principals' profiles: {grown / 2**20:.0f} MiB ({each:.1f} KiB each)")

    one, two = results[1], results[2]
    per_worker = one["events_per_s"]
    scaling = two["events_per_s"] / (2 * per_worker)
    needed = math.ceil(args.target / (per_worker * 0.7))
    partitions = 2 ** math.ceil(math.log2(max(needed * 2, 16)))
    print("\nworker-count model (measured here, 2 shared cores, so conservative):")
    print(f"  one worker detects {per_worker:,.0f} events/s (one core); two reached {scaling:.0%} of twice that")
    print(f"  {args.target:,} events/s at 70% utilisation: {needed} workers (one core each)")
    print(f"  partitions: at least 2 per worker for rebalancing, so {partitions} (set when the stream is created)")
    print(
        f"  PostgreSQL: {args.target * one['commits_per_event']:,.0f} commits/s and "
        f"{args.target * one['rows_per_event']:,.0f} row writes/s at {args.batch}-event batches"
    )
    ingest = math.ceil(args.target / (one["ingest_events_per_s"] * 0.7))
    print(f"  serve --bus processes: {ingest} at the measured ingest rate")


if __name__ == "__main__":
    main()
