"""Throughput of ``kubeguard scan`` against bare JSON parsing of the same file.

Builds a large JSON Lines file from the real kube-apiserver log in ``examples/`` (each copy of an event
gets a fresh auditID, so de-duplication does not discard the copies), then in one run measures:

* baseline: ``orjson.loads`` of every line, nothing else;
* kubeguard: the whole scan (read, decode, stage filter, de-duplication, every detector, a 10,000-entry
  custom threat list, finding building and aggregation).

It prints events/s for both and their ratio (> 1 means the scan is faster than bare parsing).

    python benchmarks/scan.py [--events 300000] [--file PATH]
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from kubeguard.config import Settings
from kubeguard.scan import default_pipeline_options, run_scan

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "lab-audit.jsonl.gz"


def build_file(path: Path, events: int) -> int:
    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines()
    written = 0
    with path.open("wb") as out:
        while written < events:
            for line in lines:
                event = orjson.loads(line)
                event["auditID"] = str(uuid.UUID(int=written))
                out.write(orjson.dumps(event) + b"\n")
                written += 1
                if written >= events:
                    break
    return written


def build_threat_list(path: Path, entries: int) -> None:
    base = int(ipaddress.ip_address("198.18.0.0"))
    path.write_text("\n".join(str(ipaddress.ip_address(base + i * 7)) for i in range(entries)) + "\n")


def bare_parse(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
            count += 1
    return count


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--file", type=Path, help="scan this JSONL file instead of a generated one")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        path = args.file or workdir / "audit.jsonl"
        if args.file is None:
            build_file(path, args.events)
        threat_list = workdir / "threats.txt"
        build_threat_list(threat_list, 10_000)
        settings = Settings()
        settings.intel.threat_lists = [f"{threat_list}:TXT"]
        settings.intel.use_default_feeds = False
        options = default_pipeline_options(settings)
        events = bare_parse(path)
        size_mb = path.stat().st_size / 1e6

        findings = 0

        def scan() -> None:
            nonlocal findings
            findings = len(run_scan([str(path)], settings, pipeline_options=options).findings)

        baseline = best_of(args.runs, lambda: bare_parse(path))
        kubeguard = best_of(args.runs, scan)
    print(f"file: {events:,} events, {size_mb:.1f} MB; best of {args.runs} runs")
    print(f"baseline orjson.loads per line : {events / baseline:>12,.0f} events/s")
    print(f"kubeguard scan (all detectors)  : {events / kubeguard:>12,.0f} events/s  ({findings} findings)")
    print(f"ratio kubeguard / baseline      : {baseline / kubeguard:>12.2f}")


if __name__ == "__main__":
    main()
