"""Throughput of ``kubeguard scan`` against bare JSON parsing of the same file.

Builds a large JSON Lines file, either from the real kube-apiserver log in ``examples/`` (``--source lab``,
the default: each copy of an event gets a fresh auditID, so de-duplication does not discard the copies) or
from the simulator's traffic with every attack (``--source sim``), then in one run measures:

* baseline: ``orjson.loads`` of every line, nothing else;
* kubeguard: the whole scan (read, decode, stage filter, de-duplication, every detector, a 10,000-entry
  custom threat list, finding building and aggregation);
* kubeguard keeping history: the same scan with ``--db`` (the activity store's roll-ups, entities, edges and
  first-seen pairs written to a fresh SQLite file), whose cost is printed as a share of the scan's time,
  with the store's size in bytes per million events.

It prints events/s for both and their ratio (> 1 means the scan is faster than bare parsing), in wall
time and in CPU time (the CPU ratio is steadier on a shared machine; a large file is scanned by several
processes, see ``kubeguard.split_scan``, so CPU time counts the children and the "one process" row shows
the same scan without them; on a busy machine the split scan's wall time gains little), plus the ratio
without the anomaly detectors, whose per-principal learning is the largest cost, the cost of kubeguard's
own detections beyond GuardDuty: the default ones (against GuardDuty's types alone) and the opt-in audit-trail pack, and
the cost of ``--sigma-rules N`` user rules (default 100, from ``benchmarks/sigma_rules.py``) as the ratio
of the full scan with and without them.

    python benchmarks/scan.py [--events 300000] [--source lab|sim] [--file PATH]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import ipaddress
import resource
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from sigma_rules import write_rules  # benchmarks/sigma_rules.py, beside this script

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


def build_sim_file(path: Path, events: int) -> int:
    from datetime import timedelta

    from kubeguard.sim import SimConfig, Simulator

    simulator = Simulator(SimConfig(seed=7, duration=timedelta(days=10), attacks=["all"]))
    written = 0
    with path.open("wb") as out:
        for event in simulator.events():
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


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (a large scan forks its decoding processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(work) -> tuple[float, float]:
    """Wall time and CPU time of one run of ``work``, after a full collection of the previous run's garbage."""
    gc.collect()
    started, started_cpu = time.perf_counter(), cpu_seconds()
    work()
    return time.perf_counter() - started, cpu_seconds() - started_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--file", type=Path, help="scan this JSONL file instead of a generated one")
    parser.add_argument("--source", choices=("lab", "sim"), default="lab", help="what to generate")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sigma-rules", type=int, default=100, help="Sigma rules for the rules row (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        path = args.file or workdir / "audit.jsonl"
        if args.file is None:
            (build_file if args.source == "lab" else build_sim_file)(path, args.events)
        threat_list = workdir / "threats.txt"
        build_threat_list(threat_list, 10_000)
        settings = Settings()
        settings.intel.threat_lists = [f"{threat_list}:TXT"]
        settings.intel.use_default_feeds = False
        options = default_pipeline_options(settings)
        events = bare_parse(path)
        size_mb = path.stat().st_size / 1e6

        findings = 0
        no_anomaly = Settings()
        no_anomaly.intel = settings.intel
        no_anomaly.anomaly.enabled = False

        with_pack = Settings()
        with_pack.intel = settings.intel
        with_pack.detectors.packs = ["audit-trail"]
        with_rules = Settings()
        with_rules.intel = settings.intel
        with_rules.anomaly = settings.anomaly
        with_rules.rules.paths = [str(write_rules(workdir / "rules", args.sigma_rules))] if args.sigma_rules else []

        def scan(config: Settings, *, guardduty_only: bool = False, history: str | None = None,
                 split: bool | None = None) -> None:
            nonlocal findings
            chosen = {**options, "detectors": guardduty_detectors()} if guardduty_only else options
            findings = len(run_scan([str(path)], config, pipeline_options=chosen, history_url=history,
                                    split=split).findings)

        run = 0

        def scan_with_history() -> None:
            nonlocal run
            run += 1
            scan(settings, history=f"sqlite:///{workdir / f'history-{run}.db'}")

        # Interleaved, so that a slow spell of a shared machine hits every measurement alike.
        baseline = full = single = signatures = guardduty = pack = ruled = history = (float("inf"), float("inf"))
        full_findings = pack_findings = 0
        for _ in range(args.runs):
            baseline = min(baseline, measure(lambda: bare_parse(path)))
            full = min(full, measure(lambda: scan(settings)))
            full_findings = findings
            single = min(single, measure(lambda: scan(settings, split=False)))
            signatures = min(signatures, measure(lambda: scan(no_anomaly)))
            guardduty = min(guardduty, measure(lambda: scan(settings, guardduty_only=True)))
            pack = min(pack, measure(lambda: scan(with_pack)))
            pack_findings = findings
            if args.sigma_rules:
                ruled = min(ruled, measure(lambda: scan(with_rules)))
            history = min(history, measure(scan_with_history))
        stored_bytes = store_bytes(workdir / f"history-{run}.db") - store_bytes(empty_store(workdir))
    print(f"file: {events:,} events ({args.file or args.source}), {size_mb:.1f} MB; best of {args.runs} runs")
    print(f"{'':38}{'wall events/s':>16}{'cpu events/s':>16}")
    rows = (
        ("baseline orjson.loads per line", baseline, ""),
        ("kubeguard scan, all detectors", full, f"  ({full_findings} findings)"),
        ("kubeguard scan, all, one process", single, ""),
        ("kubeguard scan, without anomaly", signatures, ""),
        ("kubeguard scan, GuardDuty types only", guardduty, ""),
        ("kubeguard scan, + audit-trail pack", pack, f"  ({pack_findings} findings)"),
        ("kubeguard scan, keeping history --db", history, ""),
    )
    for name, (wall, cpu), note in rows:
        print(f"{name:38}{events / wall:>16,.0f}{events / cpu:>16,.0f}{note}")
    for name, (wall, cpu), _ in rows[1:]:
        print(f"ratio {name[15:]:32}{baseline[0] / wall:>16.2f}{baseline[1] / cpu:>16.2f}   (vs baseline)")
    if args.sigma_rules:
        wall, cpu = ruled
        print(f"{'kubeguard scan, all + ' + str(args.sigma_rules) + ' Sigma rules':38}"
              f"{events / wall:>16,.0f}{events / cpu:>16,.0f}")
        print(f"ratio {'with / without Sigma rules':32}{full[0] / wall:>16.2f}{full[1] / cpu:>16.2f}"
              "   (1.00 = free)")
    print(f"cost of kubeguard's default extensions: {full[1] / guardduty[1]:.3f}x CPU time of GuardDuty's types "
          f"alone; audit-trail pack: {pack[1] / full[1]:.3f}x the default scan")
    wall_cost, cpu_cost = history[0] / full[0] - 1, history[1] / full[1] - 1
    print(f"history cost: {wall_cost:+.1%} wall, {cpu_cost:+.1%} cpu of the scan without it (budget +15%)")
    print(f"activity store: {stored_bytes / events * 1e6 / 1e6:,.1f} MB per million events ({stored_bytes:,} bytes)")


def guardduty_detectors() -> list:
    """The default detectors minus kubeguard's extensions: what scanning costs for GuardDuty's types alone."""
    from kubeguard.detectors.registry import default_detectors
    from kubeguard.findings.types import CATALOGUE

    return [d for d in default_detectors()
            if not d.finding_types or not all(CATALOGUE[t].extension for t in d.finding_types)]


def empty_store(workdir: Path) -> Path:
    from kubeguard.store.database import open_engine

    path = workdir / "empty.db"
    open_engine(f"sqlite:///{path}").dispose()
    return path


def store_bytes(path: Path) -> int:
    """Pages in use of a SQLite store (the write-ahead log checkpointed first)."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * conn.execute("PRAGMA page_size").fetchone()[0]


if __name__ == "__main__":
    main()
