"""Throughput of the audit-log file source into the spool, against decoding the same file as a baseline.

The file source reads, validates and commits every chunk of lines with its cursor in one transaction;
the baseline only decodes the same lines in memory (``decode_bytes``), so the ratio shows what durable,
resumable following costs over parsing alone. Run: ``.venv/bin/python benchmarks/sources.py [--copies 40]``.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

from kubeguard.audit.decode import decode_bytes
from kubeguard.sources.logfile import LogFileSource
from kubeguard.sources.spec import parse_source
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store.database import open_engine
from kubeguard.store.spool import Spool

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "examples" / "lab-audit.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=40, help="how many copies of the lab log to follow")
    args = parser.parse_args()
    data = gzip.decompress(LAB.read_bytes()) * args.copies
    lines = data.count(b"\n")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.log"
        path.write_bytes(data)

        started = time.perf_counter()
        events = len(decode_bytes(data, input_format="native").events)
        baseline = time.perf_counter() - started

        engine = open_engine(f"sqlite:///{Path(directory) / 'kg.db'}")
        source = LogFileSource(parse_source(f"file:{path},cluster=bench"), SpoolWriter(engine, Spool(engine)), engine)
        started = time.perf_counter()
        source.resume()
        while source.step():
            pass
        followed = time.perf_counter() - started
        spooled = Spool(engine).totals()["events"]
        engine.dispose()

    print(f"{lines:,} lines, {len(data) / 1e6:.1f} MB")
    print(f"decode only (baseline): {events:,} events in {baseline:.2f}s = {events / baseline:,.0f} events/s")
    print(f"file source to spool:   {spooled:,} events in {followed:.2f}s = {spooled / followed:,.0f} events/s")
    print(f"ratio (source / decode time): {followed / baseline:.2f}x")


if __name__ == "__main__":
    main()
