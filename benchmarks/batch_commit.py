"""What one transaction per batch costs: detection with its state in the store vs detection in memory.

Three ways over the same simulated traffic (two attacked clusters), measured in this run:

* ``memory``  — ``kubeguard scan``'s pipeline, state in memory, nothing stored (the speed to keep);
* ``before``  — the drainer as it was: detection in memory, first-seen keys each in its own transaction,
  every occurrence upserted, findings and the spool mark in one transaction (the baselines were saved as
  one blob every 30 s, which is not counted here: it favours ``before``);
* ``batch``   — :meth:`BatchProcessor.process_batch`: findings aggregated, the state the batch changed
  (first-seen keys, de-duplication keys, profile rows, the cluster's position) and the done mark in one
  transaction.

Printed per store (SQLite file; PostgreSQL when reachable) and batch size: events/s, milliseconds per
batch, and the ratios to ``memory`` and ``before``; the fastest of ``--rounds`` interleaved runs counts.
Run: ``.venv/bin/python benchmarks/batch_commit.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from batch.batches import cut, processor  # noqa: E402
from batch.traffic import SETTINGS, decode, simulated  # noqa: E402

from kubeguard.detectors.state import MemoryState  # noqa: E402
from kubeguard.pipeline import FindingSet, Pipeline  # noqa: E402
from kubeguard.store.database import open_engine  # noqa: E402
from kubeguard.store.recorder import FindingRecorder  # noqa: E402
from kubeguard.store.spool import Spool  # noqa: E402
from kubeguard.store.state import SqlState  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run_memory(batches) -> float:
    pipeline = Pipeline(SETTINGS, MemoryState())
    found = FindingSet()
    started = time.perf_counter()
    for _, cluster, body in batches:
        for line in body.split(b"\n"):
            for finding in pipeline.process_event(decode(cluster, line)):
                found.add(finding)
    return time.perf_counter() - started


def run_before(url: str, batches) -> float:
    engine = open_engine(url)
    spool = Spool(engine)
    ids = [spool.append(cluster, body, body.count(b"\n") + 1) for _, cluster, body in batches]
    pipeline = Pipeline(SETTINGS, SqlState(engine))
    recorder = FindingRecorder(engine)
    started = time.perf_counter()
    for spool_id, (_, cluster, body) in zip(ids, batches, strict=True):
        occurrences = pipeline.process([decode(cluster, line) for line in body.split(b"\n")])
        recorder.record(occurrences, also=lambda conn, spool_id=spool_id: Spool.mark_done(conn, spool_id))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def run_batch(url: str, batches) -> float:
    engine = open_engine(url)
    worker = processor(engine)
    started = time.perf_counter()
    for batch_id, cluster, body in batches:
        worker.process_batch(batch_id, cluster, events=[decode(cluster, line) for line in body.split(b"\n")])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def postgres_url() -> str | None:
    try:
        import psycopg

        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True)
    except Exception:  # noqa: BLE001 - PostgreSQL is optional here
        return None
    schema = f"kg_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    return f"{POSTGRES}?options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="events per batch, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way; the fastest counts")
    args = parser.parse_args()
    pairs = simulated()
    print(f"{len(pairs)} events, two clusters")
    for size in (int(s) for s in args.sizes.split(",")):
        batches = cut(pairs, [size] * len(pairs))
        run_memory(batches)  # warm the interpreter's and the feature parsers' caches
        memory = min(run_memory(batches) for _ in range(args.rounds))
        print(f"\n{len(batches)} batches of up to {size} events; memory: {len(pairs) / memory:,.0f} events/s")
        with tempfile.TemporaryDirectory() as directory:
            for name in ("sqlite", "postgresql"):
                before = batch = float("inf")
                for round_number in range(args.rounds):  # interleaved, so load changes hit both alike
                    urls = [f"sqlite:///{directory}/{name}-{round_number}-{way}.db" for way in ("before", "batch")]
                    if name == "postgresql":
                        urls = [postgres_url(), postgres_url()]
                        if None in urls:
                            break
                    before = min(before, run_before(urls[0], batches))
                    batch = min(batch, run_batch(urls[1], batches))
                if batch == float("inf"):
                    print(f"  {name}: unreachable, skipped")
                    continue
                for label, seconds in (("before", before), ("batch", batch)):
                    per_batch = (seconds - memory) / len(batches) * 1000
                    print(
                        f"  {name:10} {label:6}: {len(pairs) / seconds:9,.0f} events/s, "
                        f"{per_batch:6.2f} ms store cost per batch, {seconds / memory:5.2f}x memory"
                    )
                print(f"  {name:10} batch/before: {batch / before:.2f}x the time")


if __name__ == "__main__":
    main()
