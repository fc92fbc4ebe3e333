"""Soak: realistic audit traffic through the webhook for a long time; memory and backlog must stay flat.

A real ``kubeguard serve`` (subprocess, SQLite by default or ``--db URL``) receives the simulator's traffic
(``kubeguard.sim``: people, controllers, leases, and attacks after a learning period) as the API server sends
it: EventLists of up to 400 events from ``--clients`` senders at ``--rate`` events/s. Every ``--every``
seconds the server's RSS (from /proc) and its spool depth (``/api/spool``) are sampled. At the end it
prints the samples, the RSS of the last quarter against the second quarter (flat is a ratio near 1.0), and
whether every acknowledged event was drained.

Run: ``.venv/bin/python benchmarks/soak.py [--minutes 30] [--rate 2000] [--clients 4]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from api.server import Server  # noqa: E402

from kubeguard.sim.clock import parse_duration, parse_start  # noqa: E402
from kubeguard.sim.simulator import SimConfig, Simulator, cluster_names  # noqa: E402

BATCH = 400


def traffic(seed: int):
    """Endless EventLists of simulated traffic (a new simulated fortnight, new ids, when one runs out)."""
    round_number = 0
    while True:
        config = SimConfig(seed=seed + round_number, start=parse_start("2026-01-05T00:00:00Z"),
                           duration=parse_duration("14d"), clusters=cluster_names(1), attacks=["all"],
                           scale=1.0, learning=parse_duration("7d"))
        stream = (event for _, event in Simulator(config).stream())
        while batch := list(islice(stream, BATCH)):
            for event in batch:
                event["auditID"] = f"{round_number}-{event['auditID']}"
            yield orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": batch}), len(batch)
        round_number += 1


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=2000, help="events per second offered")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    feed = traffic(seed=7)
    feed_lock = threading.Lock()
    sent = {"events": 0, "refused": 0}
    deadline = time.monotonic() + args.minutes * 60
    per_client_interval = BATCH * args.clients / args.rate

    def sender(url: str) -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < deadline:
                started = time.monotonic()
                with feed_lock:
                    body, count = next(feed)
                while time.monotonic() < deadline:
                    response = client.post(f"{url}/k8s-audit/soak", content=body)
                    if response.status_code == 200:
                        with feed_lock:
                            sent["events"] += count
                        break
                    sent["refused"] += 1  # 503 under backpressure: the API server retries, so do we
                    time.sleep(float(response.headers.get("retry-after", "1")))
                time.sleep(max(0.0, per_client_interval - (time.monotonic() - started)))

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(args.db or f"sqlite:///{tmp}/soak.db", Path(tmp)).start()
        samples: list[tuple[float, float, int]] = []
        try:
            threads = [threading.Thread(target=sender, args=(server.url,), daemon=True) for _ in range(args.clients)]
            begun = time.monotonic()
            for thread in threads:
                thread.start()
            with httpx.Client(timeout=30) as client:
                while time.monotonic() < deadline:
                    time.sleep(min(args.every, max(0.0, deadline - time.monotonic())))
                    spool = client.get(f"{server.url}/api/spool").json()
                    pending = int(spool.get("events_pending", spool.get("pending_events", 0)))
                    samples.append((time.monotonic() - begun, rss_mib(server.process.pid), pending))
                    print(f"{samples[-1][0]:7.0f}s  rss {samples[-1][1]:8.1f} MiB  pending events {pending:8,}",
                          flush=True)
            for thread in threads:
                thread.join()
            drained = bool(server.wait_drained(timeout=600))
        finally:
            server.stop()
    quarter = max(1, len(samples) // 4)
    early = statistics.mean(rss for _, rss, _ in samples[quarter : 2 * quarter] or samples[:1])
    late = statistics.mean(rss for _, rss, _ in samples[-quarter:])
    print(f"sent {sent['events']:,} events in {args.minutes:.0f} min ({sent['events'] / (args.minutes * 60):,.0f}/s), "
          f"{sent['refused']:,} requests refused under backpressure")
    print(f"RSS last quarter / second quarter: {late:.1f} / {early:.1f} MiB = ratio {late / early:.2f}; "
          f"spool depth at the end {samples[-1][2]:,}; drained after: {drained}")


if __name__ == "__main__":
    main()
