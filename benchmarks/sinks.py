"""What publishing through the durable outbox costs: recording and delivering findings, against baselines.

1. Recording: findings recorded by the FindingRecorder with no sink (baseline) and with six sinks that
   each stage every finding into their outbox in the same transaction.
2. Delivery: a JSONL sink's worker draining N staged findings from the outbox (read, render, write,
   delete), against rendering and writing the same N events straight to a file (baseline).

Both sides run in this process on a SQLite file of a temporary directory; the output is ratios, which is
what carries over between machines. Run: ``.venv/bin/python benchmarks/sinks.py [--findings 2000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kubeguard.config import Settings
from kubeguard.findings.formats import encode
from kubeguard.findings.publish import Publisher
from kubeguard.findings.sample import sample_finding
from kubeguard.findings.types import ALL_FINDING_TYPES
from kubeguard.sinks.health import NoMetrics
from kubeguard.sinks.options import JsonlOptions
from kubeguard.sinks.registry import build_route
from kubeguard.store.database import open_engine
from kubeguard.store.recorder import FindingRecorder

SETTINGS = Settings(account_id="111122223333", region="eu-west-1")
BATCH = 50


def findings(count: int) -> list[dict]:
    types = list(ALL_FINDING_TYPES)
    return [sample_finding(types[i % len(types)], SETTINGS) for i in range(count)]


def record_all(workdir: Path, items: list[dict], sinks: int) -> float:
    engine = open_engine(f"sqlite:///{workdir / f'record-{sinks}.db'}")
    publisher = Publisher(engine)
    for n in range(sinks):
        options = JsonlOptions(path=str(workdir / f"out-{n}.jsonl"), name=f"sink-{n}")
        publisher.add(build_route(engine, publisher, options, SETTINGS, NoMetrics()))
    recorder = FindingRecorder(engine, stage=publisher.stage if sinks else None)
    started = time.perf_counter()
    for at in range(0, len(items), BATCH):
        recorder.record(items[at : at + BATCH])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def deliver_all(workdir: Path, items: list[dict]) -> float:
    engine = open_engine(f"sqlite:///{workdir / 'deliver.db'}")
    publisher = Publisher(engine)
    options = JsonlOptions(path=str(workdir / "delivered.jsonl"), name="jsonl")
    route = build_route(engine, publisher, options, SETTINGS, NoMetrics())
    publisher.add(route)
    with engine.begin() as conn:
        publisher.stage(conn, items)
    started = time.perf_counter()
    while route.worker.step():
        pass
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def write_directly(workdir: Path, items: list[dict]) -> float:
    started = time.perf_counter()
    with (workdir / "direct.jsonl").open("ab") as handle:
        for at in range(0, len(items), 100):
            handle.write(b"".join(encode("eventbridge", f) + b"\n" for f in items[at : at + 100]))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"record, no sink": [], "record, 6 sinks": [], "write directly": [],
                                       "deliver via outbox": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as directory:
            workdir = Path(directory)
            items = findings(args.findings)
            results["record, no sink"].append(record_all(workdir, findings(args.findings), 0))
            results["record, 6 sinks"].append(record_all(workdir, items, 6))
            results["write directly"].append(write_directly(workdir, items))
            results["deliver via outbox"].append(deliver_all(workdir, items))
    best = {name: min(times) for name, times in results.items()}
    for name, seconds in best.items():
        print(f"{name:>20}: {args.findings / seconds:10.0f} findings/s")
    print(f"recording with 6 sinks costs {best['record, 6 sinks'] / best['record, no sink']:.2f}x recording alone")
    print(f"delivering through the outbox costs {best['deliver via outbox'] / best['write directly']:.2f}x "
          "writing the same events to a file directly")


if __name__ == "__main__":
    main()
