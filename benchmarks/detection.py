"""Recall and false findings of the signature, anonymous and kubeguard-extension detections.

Runs the simulator (every attack, after its learning period) for each seed and reports, per seed:

* recall: for each non-anomaly finding type a scenario's label expects, whether it was raised on one of
  the scenario's labelled auditIDs;
* false findings: findings raised on events that belong to no attack, by type, for the default
  detectors and again with the opt-in audit-trail pack (whose findings on ordinary administration are
  the point of an audit trail, so they are reported apart, not as false alarms of the default set).

Then the same for the lab recording (tests/data/lab-scenario) and, when ``../shared`` is present, the
Falco fixtures (each scanned on its own, as tests/test_falco_parity.py does).

    python benchmarks/detection.py [--days 14] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections import Counter, defaultdict
from pathlib import Path

from anomaly import decode, intel_from_labels, simulate

from kubeguard.audit.decode import decode_bytes
from kubeguard.config import Settings
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.findings.types import AUDIT_TRAIL_PACK, CATALOGUE
from kubeguard.pipeline import FindingSet, Pipeline

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "tests" / "data" / "lab-scenario" / "audit.jsonl.gz"
FALCO = ROOT.parent / "shared" / "corpus" / "falco"


def raised_by_event(events: list, packs: tuple[str, ...], intel=None) -> dict[str, list[str]]:
    pipeline = Pipeline(Settings(), MemoryState(), detectors=default_detectors(packs), intel=intel)
    raised: dict[str, list[str]] = defaultdict(list)
    for event in events:
        for finding in pipeline.process_event(event):
            raised[event.auditID].append(finding["type"])
    return raised


def simulator_report(days: int, seed: int) -> None:
    started = time.perf_counter()
    lines, names, labels = simulate(days, seed, 1)
    print(f"\n== simulator, seed {seed}: {len(lines):,} events over {days} days "
          f"(simulated in {time.perf_counter() - started:.0f}s)")
    intel = intel_from_labels(labels)
    raised = raised_by_event(decode(lines, names), (), intel)
    attack_ids = {audit_id for label in labels for audit_id in label["auditIDs"]}
    found = expected = 0
    for label in labels:
        for item in label["expected"]:
            if "AnomalousBehavior" in item["type"]:
                continue
            hit = any(item["type"] in raised.get(i, ()) for i in item["auditIDs"])
            expected += 1
            found += hit
            if not hit:
                print(f"  MISS {label['scenario']}: {item['type']}")
    print(f"  recall (signature, anonymous, IP-list types): {found}/{expected}")
    _false("default detectors", raised, attack_ids, len(lines) - len(attack_ids))
    with_pack = raised_by_event(decode(lines, names), (AUDIT_TRAIL_PACK,), intel)
    pack_only = {i: [t for t in types if CATALOGUE[t].pack] for i, types in with_pack.items()}
    _false("audit-trail pack (ordinary administration recorded)", pack_only, attack_ids,
           len(lines) - len(attack_ids))


def _false(title: str, raised: dict[str, list[str]], attack_ids: set[str], benign_events: int) -> None:
    false = Counter(t for audit_id, types in raised.items() if audit_id not in attack_ids for t in types
                    if "AnomalousBehavior" not in t)
    total = sum(false.values())
    print(f"  {title}: {total} findings on {benign_events:,} benign events")
    for finding_type, count in false.most_common():
        print(f"    {count:6d} {finding_type}")


def lab_report() -> None:
    events = decode_bytes(gzip.decompress(LAB.read_bytes())).events
    for packs in ((), (AUDIT_TRAIL_PACK,)):
        pipeline = Pipeline(Settings(), MemoryState(), detectors=default_detectors(packs))
        findings = FindingSet()
        for event in events:
            for finding in pipeline.process_event(event):
                findings.add(finding)
        print(f"\n== lab recording, {'with ' + packs[0] + ' pack' if packs else 'default detectors'}: "
              f"{len(findings)} findings")
        for finding in findings.values():
            who = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
            print(f"    {finding['service']['count']:4d} {finding['type']}  ({who})")


def falco_report() -> None:
    if not FALCO.exists():
        print("\n== Falco fixtures: not found (../shared absent), skipped")
        return
    print("\n== Falco fixtures, each scanned alone: types raised (default | with audit-trail pack)")
    for path in sorted(FALCO.glob("*.json")):
        row = []
        for packs in ((), (AUDIT_TRAIL_PACK,)):
            pipeline = Pipeline(Settings(), MemoryState(), detectors=default_detectors(packs))
            types = sorted({f["type"].split("/")[1] for e in decode_bytes(path.read_bytes()).events
                            for f in pipeline.process_event(e)})
            row.append(", ".join(types) or "-")
        print(f"  {path.stem:58s} {row[0]}  |  {row[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    for seed in args.seeds:
        simulator_report(args.days, seed)
    lab_report()
    falco_report()


if __name__ == "__main__":
    main()
