"""Quality and cost of the AnomalousBehavior detectors on simulated traffic with every attack.

Runs the simulator for N days (learning period 7 days, attacks after it), feeds every event through
the full default pipeline, and prints in one run:

* recall per attack scenario: for each finding type the scenario's label expects, whether it was raised
  on one of the labelled auditIDs, and on how many of them;
* false anomaly findings: AnomalousBehavior findings raised on events that belong to no attack,
  per 100,000 such benign events;
* events/s of the pipeline with and without the anomaly detectors, and their ratio;
* the size of the persisted baselines.

    python benchmarks/anomaly.py [--days 14] [--seed 0] [--clusters 1]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from datetime import timedelta

import msgspec
import orjson

from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.intel.index import IntelIndex, ThreatList
from kubeguard.intel.ipset import IPSet
from kubeguard.pipeline import Pipeline
from kubeguard.sim import SimConfig, Simulator
from kubeguard.sim.simulator import cluster_names

ANOMALY = "AnomalousBehavior"


def simulate(days: int, seed: int, clusters: int) -> tuple[list[bytes], list[str], list[dict]]:
    simulator = Simulator(SimConfig(seed=seed, duration=timedelta(days=days), clusters=cluster_names(clusters),
                                    attacks=["all"]))
    lines: list[bytes] = []
    names: list[str] = []
    for cluster, event in simulator.stream():
        lines.append(orjson.dumps(event))
        names.append(cluster)
    return lines, names, simulator.labels


def decode(lines: list[bytes], names: list[str]) -> list[AuditEvent]:
    decoder = msgspec.json.Decoder(AuditEvent)
    events = []
    for line, cluster in zip(lines, names, strict=True):
        event = decoder.decode(line)
        event.cluster = cluster
        events.append(event)
    return events


def intel_from_labels(labels: list[dict]) -> IntelIndex:
    """The Tor and custom lists the threat-list scenarios call from, as an operator would configure them."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        for kind, addresses in (label.get("threatIPs") or {}).items():
            by_kind[kind].extend(addresses)
    return IntelIndex([ThreatList(f"sim-{kind}", kind, IPSet.of(ips)) for kind, ips in by_kind.items()])


def run(
    events: list[AuditEvent], anomaly: bool, intel: IntelIndex
) -> tuple[float, dict[str, list[str]], Pipeline]:
    """Seconds taken, and the finding types raised per auditID."""
    settings = Settings()
    settings.anomaly.enabled = anomaly
    detectors = [d for d in default_detectors() if anomaly or not d.name.startswith("anomaly.")]
    pipeline = Pipeline(settings, MemoryState(), detectors=detectors, intel=intel)
    raised: dict[str, list[str]] = defaultdict(list)
    started = time.perf_counter()
    for event in events:
        for finding in pipeline.process_event(event):
            raised[event.auditID].append(finding["type"])
    return time.perf_counter() - started, raised, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clusters", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    lines, names, labels = simulate(args.days, args.seed, args.clusters)
    print(f"simulated {len(lines):,} events over {args.days} days in {time.perf_counter() - started:.1f}s")

    intel = intel_from_labels(labels)
    plain_seconds, _, _ = run(decode(lines, names), anomaly=False, intel=intel)
    seconds, raised, pipeline = run(decode(lines, names), anomaly=True, intel=intel)

    attack_ids = {audit_id for label in labels for audit_id in label["auditIDs"]}
    print("\nrecall per attack scenario (finding type: raised on its labelled events?, events covered)")
    detected = expected = 0
    for label in labels:
        print(f"  {label['scenario']}")
        for item in label["expected"]:
            hits = [i for i in item["auditIDs"] if item["type"] in raised.get(i, ())]
            marker = "ok  " if hits else "MISS"
            kind = "anomaly " if ANOMALY in item["type"] else "rule    "
            print(f"    {marker} {kind}{item['type']}  {len(hits)}/{len(item['auditIDs'])}")
            if ANOMALY in item["type"]:
                expected += 1
                detected += bool(hits)
    print(f"anomaly finding types detected: {detected}/{expected}")

    counted = pipeline.stats.counted
    attack_events = len(attack_ids)
    false = Counter(t for audit_id, types in raised.items() if audit_id not in attack_ids
                    for t in types if ANOMALY in t)
    benign_events = counted - attack_events
    total_false = sum(false.values())
    print(f"\nfalse anomaly findings: {total_false} on {benign_events:,} benign events "
          f"= {total_false * 100_000 / max(1, benign_events):.2f} per 100,000")
    for finding_type, count in false.most_common():
        print(f"  {count:6d} {finding_type}")

    print(f"\nevents/s without anomaly detectors: {len(lines) / plain_seconds:,.0f}")
    print(f"events/s with anomaly detectors:    {len(lines) / seconds:,.0f}")
    print(f"ratio (with / without): {plain_seconds / seconds:.2f}")
    assert pipeline.baselines is not None
    blob = pipeline.baselines.to_bytes()
    principals = sum(len(c.principals) for c in pipeline.baselines.clusters.values())
    print(f"baselines: {principals} principals, {len(blob):,} bytes serialised")


if __name__ == "__main__":
    main()
