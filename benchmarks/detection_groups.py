"""How fast ``serve``'s drainer empties a backlog, by detection group size: one batch per transaction
(the former drainer) against groups of several batches in one transaction, on SQLite and PostgreSQL.

A store is filled with ``--batches`` webhook EventLists of 400 real events (benchmarks/webhook.py's
workload: the lab scenario, cycled, fresh auditIDs), as the webhook would spool them, then
:class:`kubeguard.api.ingest.drainer.SpoolDrainer` (as ``serve`` builds it, every detector on, the
activity recorder on unless ``--no-history``) drains it with its group bound set to each of
``--group-events``; 400 is one batch per transaction. A last variant takes groups of 8,000 whose events
the webhook left decoded in the handoff (as in ``serve`` when the batch's cluster is named in the path).
Printed: events per CPU-second of this process (best of ``--rounds``, interleaved) and the ratio to one
batch per transaction; PostgreSQL's own work is in another process, so its wall rate is printed as well.

Run: ``.venv/bin/python benchmarks/detection_groups.py [--rounds 3] [--batches 80] [--no-history]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.webhook import EVENTS_PER_BATCH, Workload, postgres_url  # noqa: E402
from kubeguard.api.app import build_context  # noqa: E402
from kubeguard.api.options import serve_options  # noqa: E402
from kubeguard.audit.decode import decode_bytes  # noqa: E402
from kubeguard.config import load_settings  # noqa: E402
from kubeguard.store.spool import SpoolEntry  # noqa: E402

HANDOFF = "8000, decoded by the webhook"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def drain(db_url: str, variant: str, workload: Workload, batches: int, history: bool) -> tuple[float, float]:
    """(events per CPU-second, events per wall-second) draining ``batches`` spooled EventLists."""
    settings = load_settings(None)
    options = serve_options({"keep_history": history})
    context, drainer = build_context(settings, options, db_url, open_access=True, mutual_tls=False)
    handoff = variant == HANDOFF
    drainer.max_group_events = 8000 if handoff else int(variant)
    warm = workload.batches("warm", 4)
    context.spool.append_many([SpoolEntry("bench", body, EVENTS_PER_BATCH) for _, body in warm])
    while drainer.drain_once():
        pass
    work = workload.batches(f"g{variant}", batches)
    for start in range(0, len(work), 20):  # as the webhook's group commits would
        chunk = work[start : start + 20]
        ids = context.spool.append_many([SpoolEntry("bench", body, EVENTS_PER_BATCH) for _, body in chunk])
        if handoff:
            for spool_id, (_, body) in zip(ids, chunk, strict=True):
                decoded = decode_bytes(body, source="webhook", cluster="bench")
                drainer.handoff.put(spool_id, "bench", decoded.events, len(decoded.rejects))
    began_cpu, began = cpu(), time.perf_counter()
    while drainer.drain_once():
        pass
    used_cpu, used = cpu() - began_cpu, time.perf_counter() - began
    drainer.stop()
    context.engine.dispose()
    events = batches * EVENTS_PER_BATCH
    return events / used_cpu, events / used


def drop_schemas(schemas: list[str]) -> None:
    if not schemas:
        return
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        for name in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=80)
    parser.add_argument("--group-events", default="400,2000,4000,8000,16000")
    parser.add_argument("--no-history", action="store_true", help="without the activity recorder")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    variants = [*args.group_events.split(","), HANDOFF]
    workload = Workload()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": lambda: f"sqlite:///{tmp}/{time.monotonic_ns()}.db"}
        schemas: list[str] = []

        def fresh_postgres() -> str:
            url = postgres_url()
            schemas.append(url.rsplit("%3D", 1)[1])
            return url

        if not args.no_postgres:
            probe = postgres_url()
            if probe is not None:
                schemas.append(probe.rsplit("%3D", 1)[1])
                stores["postgresql"] = fresh_postgres
        best: dict[tuple[str, str], tuple[float, float]] = {}
        try:
            for _ in range(args.rounds):
                for name, fresh in stores.items():
                    for variant in variants:
                        rate = drain(fresh(), variant, workload, args.batches, not args.no_history)
                        previous = best.get((name, variant), (0.0, 0.0))
                        best[(name, variant)] = (max(previous[0], rate[0]), max(previous[1], rate[1]))
        finally:
            drop_schemas(schemas)
    history = "off" if args.no_history else "on"
    print(
        f"{args.batches} EventLists of {EVENTS_PER_BATCH} events, activity history {history}, best of "
        f"{args.rounds}, load average {os.getloadavg()[0]:.1f}"
    )
    for name in stores:
        base = best[(name, variants[0])][0]
        for variant in variants:
            per_cpu, per_wall = best[(name, variant)]
            label = "one batch per transaction" if variant == "400" else f"groups of {variant}"
            print(
                f"{name}, {label}: {per_cpu:,.0f} events/CPU-s ({per_cpu / base:.2f}x), {per_wall:,.0f} events/s wall"
            )


if __name__ == "__main__":
    main()
