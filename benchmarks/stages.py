"""Where a scan's time goes: the cost of each stage, as a share of the whole and against bare parsing.

On one file (the lab log repeated with fresh auditIDs, or the simulator's traffic with every attack), in
one run and best of several interleaved rounds, it times:

* baseline: ``orjson.loads`` of every line, nothing else;
* decode: kubeguard's reader (block reads, msgspec into AuditEvents, cluster stamping);
* stage filter + de-duplication: the pipeline with detection switched off;
* routing: the engine's outcome check and route lookup, with no detector behind it;
* each detector family, added one after the other in the registry's order so that trackers run before
  the detectors that read them and the anomaly learner before the anomaly detectors that read its
  baselines; each row is what adding that family costs, finding building for its detections included;
* aggregation: merging findings by id and finding attack sequences, as ``scan`` does at the end.

Each row prints seconds, its share of the whole scan and its ratio to the baseline. The stages are timed
apart (events decoded up front, then fed to the pipeline), so their sum is close to, not exactly, a
streaming scan's time; the last lines compare the two, and show the split scan (decoding and order-free
detection in forked processes, ``kubeguard.split_scan``) with the CPU time of all its processes.

    python benchmarks/stages.py [--events 100000] [--source lab|sim] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scan import bare_parse, build_file, build_sim_file  # benchmarks/scan.py, beside this file

from kubeguard.audit.decode import EventReader
from kubeguard.config import Settings
from kubeguard.correlate.stage import with_sequences
from kubeguard.detectors.base import Detector
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline
from kubeguard.scan import run_scan

#: Detector families in the order they are added, each a test on a detector of the default registry.
FAMILIES: tuple[tuple[str, Callable[[Detector], bool]], ...] = (
    ("trackers", lambda d: type(d).__module__.endswith(".trackers")),
    ("callers (anonymous, threat intel)", lambda d: ".callers." in type(d).__module__),
    ("GuardDuty signatures", lambda d: ".signatures." in type(d).__module__
     and not type(d).__module__.endswith((".trackers", ".extensions"))),
    ("kubeguard extensions", lambda d: type(d).__module__.endswith(".extensions")),
    ("anomaly learner", lambda d: d.name == "anomaly.learner"),
    ("anomaly detectors", lambda d: ".anomaly." in type(d).__module__ and d.name != "anomaly.learner"),
)


def family_of(detector: Detector) -> str:
    for name, member in FAMILIES:
        if member(detector):
            return name
    return "other"


def decode(path: Path) -> list:
    return list(EventReader().read_paths([str(path)]))


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the split scan's decoding processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(work: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    started = cpu_seconds()  # CPU time: steadier than wall time on a shared machine
    result = work()
    return cpu_seconds() - started, result


def pipeline_seconds(path: Path, settings: Settings, detectors: list[Detector] | None) -> tuple[float, list]:
    """CPU seconds the pipeline takes over the file's events (decoded beforehand, untimed)."""
    events = decode(path)
    pipeline = Pipeline(settings, MemoryState(), detectors=detectors or [])
    if detectors is None:  # stage filter and de-duplication only: no routing, no detector
        pipeline.engine.detect = lambda event: []  # type: ignore[method-assign]
    seconds, findings = timed(lambda: pipeline.process(events))
    return seconds, findings  # type: ignore[return-value]


def aggregate(findings: list) -> list:
    merged = FindingSet()
    for finding in findings:
        merged.add(finding)
    return with_sequences(merged.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--source", choices=("lab", "sim"), default="lab")
    parser.add_argument("--file", type=Path, help="measure this JSONL file instead of a generated one")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    settings.intel.use_default_feeds = False
    detectors = default_detectors(settings.detectors.packs)
    families = [name for name, _ in FAMILIES] + (["other"] if any(family_of(d) == "other" for d in detectors)
                                                  else [])
    with tempfile.TemporaryDirectory() as scratch:
        path = args.file or Path(scratch) / "audit.jsonl"
        if args.file is None:
            (build_file if args.source == "lab" else build_sim_file)(path, args.events)
        best: dict[str, float] = {}

        def keep(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, float("inf")), seconds)

        findings: list = []
        for _ in range(args.rounds):
            keep("baseline", timed(lambda: bare_parse(path))[0])
            keep("decode", timed(lambda: decode(path))[0])
            keep("filter+dedup", pipeline_seconds(path, settings, None)[0])
            keep("routing", pipeline_seconds(path, settings, [])[0])
            enabled: set[str] = set()
            for family in families:
                enabled.add(family)
                chosen = [d for d in detectors if family_of(d) in enabled]
                seconds, findings = pipeline_seconds(path, settings, chosen)
                keep(f"up to {family}", seconds)
            keep("aggregation", timed(lambda found=findings: aggregate(found))[0])
            keep("streaming scan", timed(lambda: run_scan([str(path)], settings, split=False))[0])
            split_started = time.perf_counter()
            keep("split scan cpu", timed(lambda: run_scan([str(path)], settings, split=True))[0])
            keep("split scan wall", time.perf_counter() - split_started)
        events = bare_parse(path)
    rows = [("decode", best["decode"]), ("stage filter + de-duplication", best["filter+dedup"]),
            ("routing (outcome, route lookup)", best["routing"] - best["filter+dedup"])]
    previous = best["routing"]
    for family in families:
        rows.append((family, best[f"up to {family}"] - previous))
        previous = best[f"up to {family}"]
    rows.append(("aggregation + sequences", best["aggregation"]))
    whole = best["decode"] + previous + best["aggregation"]
    baseline = best["baseline"]
    print(f"{events:,} events ({args.file or args.source}); CPU seconds, best of {args.rounds} interleaved rounds")
    print(f"baseline orjson.loads per line: {baseline:.3f} s ({events / baseline:,.0f} events/s)")
    print(f"{'stage':36}{'seconds':>9}{'share':>8}{'× baseline':>12}")
    for name, seconds in rows:
        print(f"{name:36}{seconds:9.3f}{seconds / whole:8.1%}{seconds / baseline:12.2f}")
    print(f"{'sum of stages':36}{whole:9.3f}{1:8.1%}{whole / baseline:12.2f}")
    streaming = best["streaming scan"]
    print(f"streaming run_scan, one process: {streaming:.3f} s, {streaming / baseline:.2f}× the baseline "
          f"(scan rate {baseline / streaming:.2f}× the parse rate); {len(findings)} findings before aggregation")
    split_cpu, split_wall = best["split scan cpu"], best["split scan wall"]
    print(f"split run_scan (kubeguard.split_scan): {split_cpu:.3f} s CPU in all its processes "
          f"({split_cpu / streaming:.2f}× the one-process scan's), {split_wall:.3f} s wall "
          f"(scan rate {baseline / split_wall:.2f}× the parse rate, wall against the baseline's CPU)")


if __name__ == "__main__":
    main()
