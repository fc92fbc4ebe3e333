"""How many attack sequences kubeguard raises per 100,000 audit events, file by file.

    python scripts/sequence_rate.py benign.jsonl.gz more/*.jsonl.gz [--labels labels.jsonl]

For ordinary traffic the answer must be zero. With ``--labels`` (from ``kubeguard simulate``), each
sequence is matched to the scenario whose principals it names, so a labelled run shows which intrusions
became sequences and whether anything else did.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kubeguard.config import Settings
from kubeguard.correlate.sequences import SEQUENCE_TYPE
from kubeguard.intel.geo import GeoResolver
from kubeguard.scan import run_scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--labels", type=Path)
    args = parser.parse_args()
    labels = [json.loads(line) for line in args.labels.read_text().splitlines()] if args.labels else []
    total_events = total_sequences = 0
    for path in args.paths:
        result = run_scan([path], Settings(), pipeline_options={"describe_ip": GeoResolver().details})
        sequences = [f for f in result.findings if f["type"] == SEQUENCE_TYPE]
        events = result.stats.counted
        total_events += events
        total_sequences += len(sequences)
        print(f"{path}: {events:,} events, {len(result.findings) - len(sequences)} findings, "
              f"{len(sequences)} sequences ({len(sequences) * 100_000 / max(events, 1):.3f} per 100,000 events)")
        for sequence in sequences:
            actors = {a["user"]["name"] for a in sequence["service"]["detection"]["sequence"]["actors"]}
            scenarios = [label["scenario"] for label in labels if actors & set(label["principals"])]
            print(f"  {sequence['id']}  {', '.join(sorted(actors))}  "
                  f"{len(sequence['service']['detection']['sequence']['signals'])} signals  "
                  f"scenario: {', '.join(scenarios) or 'NONE (false positive)'}")
    print(f"total: {total_events:,} events, {total_sequences} sequences "
          f"({total_sequences * 100_000 / max(total_events, 1):.3f} per 100,000 events)")


if __name__ == "__main__":
    main()
