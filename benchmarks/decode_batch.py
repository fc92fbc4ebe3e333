"""Cost of decoding one webhook batch (an EventList of real API-server events) against parsing it once.

The webhook decodes each request body to count and check its events before it acknowledges them. This
measures, in one run, best of several interleaved rounds:

* baseline: ``orjson.loads`` of the body, once (the least any receiver that reads the JSON must do);
* ``decode_bytes``: kubeguard's decoder on the same body, format sniffed (``auto``) as the webhook does;
* ``decode_bytes`` with the format named (``native``): what decoding costs with no sniffing at all.

A ratio near 1 (or below) means a batch costs one parse; issue 14 found the sniffing parsed it twice more.

    python benchmarks/decode_batch.py [--events 400] [--rounds 30]
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from kubeguard.audit.decode import decode_bytes

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lab-audit.jsonl.gz"


def event_list(events: int) -> bytes:
    """An EventList body as the API server's webhook backend sends it: one line, ``events`` items."""
    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines()
    items = [orjson.loads(lines[i % len(lines)]) for i in range(events)]
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})


def best_seconds(work: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="Events per batch (the API server sends <= 400).")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    body = event_list(args.events)
    assert len(decode_bytes(body, source="bench").events) == args.events
    candidates: dict[str, Callable[[], object]] = {
        "orjson.loads (baseline)": lambda: orjson.loads(body),
        "decode_bytes, auto": lambda: decode_bytes(body, source="bench"),
        "decode_bytes, native": lambda: decode_bytes(body, source="bench", input_format="native"),
    }
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(args.rounds):
        for name, work in candidates.items():
            best[name] = min(best[name], best_seconds(work, 5))
    baseline = best["orjson.loads (baseline)"]
    print(f"one EventList of {args.events} events, {len(body) / 1e6:.2f} MB; best of {args.rounds} rounds")
    for name, seconds in best.items():
        print(f"  {name:26} {seconds * 1000:8.2f} ms  {seconds / baseline:5.2f}× the baseline")


if __name__ == "__main__":
    main()
