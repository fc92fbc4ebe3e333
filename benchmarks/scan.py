"""Throughput of ``kubeguard scan`` against bare JSON parsing of the same file.

Builds a large JSON Lines file, either from the real kube-apiserver log in ``examples/`` (``--source lab``,
the default: each copy of an event gets a fresh auditID, so de-duplication does not discard the copies) or
from the simulator's traffic with every attack (``--source sim``), then in one run measures:

* baseline: ``orjson.loads`` of every line, nothing else;
* kubeguard: the whole scan (read, decode, stage filter, de-duplication, every detector, a 10,000-entry
  custom threat list, finding building and aggregation).

It prints events/s for both and their ratio (> 1 means the scan is faster than bare parsing), in wall
time and in CPU time (the CPU ratio is steadier on a shared machine), plus the ratio without the anomaly
detectors, whose per-principal learning is the largest cost, and the cost of kubeguard's own detections
beyond GuardDuty: the default ones (against GuardDuty's types alone) and the opt-in audit-trail pack.

    python benchmarks/scan.py [--events 300000] [--source lab|sim] [--file PATH]
"""

from __future__ import annotations

import argparse
import gc
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


def measure(work) -> tuple[float, float]:
    """Wall time and CPU time of one run of ``work``, after a full collection of the previous run's garbage."""
    gc.collect()
    started, started_cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - started, time.process_time() - started_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--file", type=Path, help="scan this JSONL file instead of a generated one")
    parser.add_argument("--source", choices=("lab", "sim"), default="lab", help="what to generate")
    parser.add_argument("--runs", type=int, default=3)
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

        def scan(config: Settings, *, guardduty_only: bool = False) -> None:
            nonlocal findings
            chosen = {**options, "detectors": guardduty_detectors()} if guardduty_only else options
            findings = len(run_scan([str(path)], config, pipeline_options=chosen).findings)

        # Interleaved, so that a slow spell of a shared machine hits every measurement alike.
        baseline = full = signatures = guardduty = pack = (float("inf"), float("inf"))
        full_findings = pack_findings = 0
        for _ in range(args.runs):
            baseline = min(baseline, measure(lambda: bare_parse(path)))
            full = min(full, measure(lambda: scan(settings)))
            full_findings = findings
            signatures = min(signatures, measure(lambda: scan(no_anomaly)))
            guardduty = min(guardduty, measure(lambda: scan(settings, guardduty_only=True)))
            pack = min(pack, measure(lambda: scan(with_pack)))
            pack_findings = findings
    print(f"file: {events:,} events ({args.file or args.source}), {size_mb:.1f} MB; best of {args.runs} runs")
    print(f"{'':38}{'wall events/s':>16}{'cpu events/s':>16}")
    rows = (
        ("baseline orjson.loads per line", baseline, ""),
        ("kubeguard scan, all detectors", full, f"  ({full_findings} findings)"),
        ("kubeguard scan, without anomaly", signatures, ""),
        ("kubeguard scan, GuardDuty types only", guardduty, ""),
        ("kubeguard scan, + audit-trail pack", pack, f"  ({pack_findings} findings)"),
    )
    for name, (wall, cpu), note in rows:
        print(f"{name:38}{events / wall:>16,.0f}{events / cpu:>16,.0f}{note}")
    for name, (wall, cpu), _ in rows[1:]:
        print(f"ratio {name[15:]:32}{baseline[0] / wall:>16.2f}{baseline[1] / cpu:>16.2f}   (vs baseline)")
    print(f"cost of kubeguard's default extensions: {full[1] / guardduty[1]:.3f}x CPU time of GuardDuty's types "
          f"alone; audit-trail pack: {pack[1] / full[1]:.3f}x the default scan")


def guardduty_detectors() -> list:
    """The default detectors minus kubeguard's extensions: what scanning costs for GuardDuty's types alone."""
    from kubeguard.detectors.registry import default_detectors
    from kubeguard.findings.types import CATALOGUE

    return [d for d in default_detectors()
            if not d.finding_types or not all(CATALOGUE[t].extension for t in d.finding_types)]


if __name__ == "__main__":
    main()
