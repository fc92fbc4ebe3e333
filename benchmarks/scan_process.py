"""Whole-process ``kubeguard scan`` against a whole-process bare parse of the same file: the issue 14 check.

Builds the file as ``benchmarks/scan.py`` does (the lab log repeated with fresh auditIDs, 200,000 events by
default) unless ``--file`` names one, then runs, interleaved and best of ``--runs``:

* baseline: ``python -c`` looping ``orjson.loads`` over the file's lines, nothing else;
* ``kubeguard scan --format jsonl --output /dev/null FILE`` (start-up, every detector, anomaly included),
  as a user runs it: split over the cores (``kubeguard.split_scan``);
* the same scan with ``KUBEGUARD_SCAN_PROCESSES=1`` (one process), to show what the second core adds.

It prints wall seconds and CPU seconds (user + system, children included) for each, and the rate ratio
against the baseline (``baseline time / scan time``: ≥ 1 means the scan is at least as fast as parsing).

    python benchmarks/scan_process.py [--events 200000] [--file PATH] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scan import build_file  # benchmarks/scan.py, beside this script

BARE_PARSE = (
    "import sys, orjson\n"
    "n = 0\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    for line in f:\n"
    "        orjson.loads(line); n += 1\n"
    "print(n)\n"
)


def kubeguard_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m kubeguard.cli``."""
    script = Path(sys.executable).with_name("kubeguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kubeguard.cli"]


def timed_run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the child and its children) and stdout of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 3):  # 3: findings at or above --fail-on (not used here, but not a failure)
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--file", type=Path, help="scan this JSONL file instead of a generated one")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.file or Path(scratch) / "audit.jsonl"
        if args.file is None:
            build_file(path, args.events)
        scan = [*kubeguard_command(), "scan", "--format", "jsonl", "--output", "/dev/null", str(path)]
        one_process = {**os.environ, "KUBEGUARD_SCAN_PROCESSES": "1"}
        parse = [sys.executable, "-c", BARE_PARSE, str(path)]
        events = int(timed_run(parse)[2])
        rows = (("parse", parse, None), ("scan", scan, None), ("scan1", scan, one_process))
        best = {name: (float("inf"), float("inf")) for name, _, _ in rows}
        for _ in range(args.runs):  # interleaved: a slow spell of a shared machine hits every row alike
            for name, command, env in rows:
                wall, cpu, _ = timed_run(command, env)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        size_mb = path.stat().st_size / 1e6
    print(f"file: {events:,} events ({args.file or 'lab log, fresh auditIDs'}), {size_mb:.1f} MB; "
          f"best of {args.runs} interleaved runs; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':44}{'wall s':>9}{'cpu s':>9}{'rate ratio (wall)':>20}")
    base_wall = best["parse"][0]
    for name, label in (("parse", "baseline: orjson.loads per line"), ("scan", "kubeguard scan"),
                        ("scan1", "kubeguard scan, one process")):
        wall, cpu = best[name]
        print(f"{label:44}{wall:9.3f}{cpu:9.3f}{base_wall / wall:20.2f}")


if __name__ == "__main__":
    main()
