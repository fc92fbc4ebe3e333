"""What the finding count triggers cost each write, on SQLite and PostgreSQL.

Fills a store with ``--count`` synthetic findings (benchmarks/queries.py's fill), then times the statements
that change findings with each set of count triggers installed in turn, interleaved, best of ``--rounds``:
no triggers (the baseline), the version-12 set (``kg_finding_counts`` and ``kg_finding_day_counts``) and the
current set (version 14 adds ``kg_finding_window_counts``). Each measurement runs in a transaction that
is rolled back, so every variant meets the same store. The statements are the recorder's: an executemany
INSERT of new findings (updated today), an executemany UPDATE that folds a later occurrence into existing
findings (a later ``updatedAt``, sometimes the next day: the finding moves between day cells) and the
archive UPDATE. SQLite runs the triggers in this process, so its cost is CPU time; PostgreSQL's is the
wall time of the statement (the server's work).

Run: ``.venv/bin/python benchmarks/finding_writes.py [--count 200000] [--dialects sqlite,postgresql]``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queries import DETECTOR, START_MS, _iso, _row, add_store_options, fill, store, synthetic
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from kubeguard.store import finding_counts, schema

DAY_MS = finding_counts.DAY_MS

_table = schema.findings
VARIANTS: dict[str, tuple[finding_counts.Aggregate, ...]] = {
    "no triggers": (),
    "version 12 (counts, day counts)": finding_counts.VERSION_12,
    "version 14 (+ window counts)": finding_counts.AGGREGATES,
}


def _use(engine: Engine, aggregates: tuple[finding_counts.Aggregate, ...]) -> None:
    """Install exactly ``aggregates``' triggers, with their cells counted (so removals find their cells)."""
    with engine.begin() as conn:
        if aggregates:
            finding_counts.install(conn, aggregates)
        else:
            finding_counts.uninstall(conn)


def _statements(conn: Connection, batch: int, rng: random.Random) -> dict[str, Callable[[Connection], Any]]:
    today = START_MS + 89 * DAY_MS
    new_rows = []
    for index in range(batch):
        finding = synthetic(10**9 + index, rng)
        finding["updatedAt"] = finding["service"]["eventLastSeen"] = _iso(today + rng.randrange(DAY_MS))
        new_rows.append(_row(finding))
    ids = [row.id for row in conn.execute(select(_table.c.id).where(_table.c.detector_id == DETECTOR).limit(50_000))]
    chosen = rng.sample(ids, min(batch, len(ids)))
    current = {
        row.id: row.updated_at_ms
        for row in conn.execute(select(_table.c.id, _table.c.updated_at_ms).where(_table.c.id.in_(chosen)))
    }
    merged = [
        {"finding_id": finding_id, "updated": updated + rng.randrange(3_600_000), "count": rng.randrange(2, 30)}
        for finding_id, updated in current.items()
    ]
    merge = (
        update(_table)
        .where(_table.c.id == bindparam("finding_id"))
        .values(updated_at_ms=bindparam("updated"), event_last_seen_ms=bindparam("updated"), count=bindparam("count"))
    )
    archive = update(_table).where(_table.c.id.in_(chosen[:50])).values(archived=True)
    return {
        f"insert {batch} new findings": lambda c: c.execute(insert(_table), new_rows),
        f"merge into {len(merged)} findings": lambda c: c.execute(merge, merged),
        "archive 50 findings": lambda c: c.execute(archive),
    }


def _cost(engine: Engine, statement: Callable[[Connection], Any], postgres: bool) -> float:
    """Seconds the statement takes (CPU for SQLite, wall for PostgreSQL), rolled back afterwards."""
    with engine.connect() as conn:
        transaction = conn.begin()
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        statement(conn)
        cost = time.perf_counter() - start_wall if postgres else time.process_time() - start_cpu
        transaction.rollback()
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    add_store_options(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for dialect in args.dialects.split(","):
            with store(dialect, Path(tmp), args.postgres_url, args.postgres_dsn) as engine:
                fill(engine, args.count)
                postgres = engine.dialect.name == "postgresql"
                with engine.connect() as conn:
                    statements = _statements(conn, args.batch, random.Random(5))
                best: dict[tuple[str, str], float] = {}
                for _ in range(args.rounds):
                    for variant, aggregates in VARIANTS.items():
                        _use(engine, aggregates)
                        for name, statement in statements.items():
                            cost = _cost(engine, statement, postgres)
                            best[variant, name] = min(best.get((variant, name), cost), cost)
                _use(engine, finding_counts.AGGREGATES)
                unit = "wall" if postgres else "CPU"
                print(f"\n{dialect}: {args.count:,} findings stored; best of {args.rounds}, {unit} ms per statement")
                baseline = next(iter(VARIANTS))
                for name in statements:
                    print(f"  {name}")
                    for variant in VARIANTS:
                        cost, base = best[variant, name], best[baseline, name]
                        print(f"    {variant:34s} {cost * 1000:8.1f} ms  {cost / base:5.2f}x no triggers")
                    v12, v14 = (best[variant, name] for variant in list(VARIANTS)[1:])
                    print(f"    {'version 14 / version 12':34s} {'':11s} {v14 / v12:5.2f}x")


if __name__ == "__main__":
    main()
