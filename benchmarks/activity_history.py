"""The activity history of millions of events, for the query and console benchmarks, built once and reused.

How it is made: the simulator (``kubeguard.sim``) plays a fleet of clusters (four by default: the stock
``prod-use1``, ``staging-usw2``, ``prod-euw1``, ``dev-apse2``) over as many days as the asked-for number of
counted events needs at its pace (about 37,000 counted events per cluster and day at ``scale=1.5``), with
every attack from the third day on, and is cut at that number. A child process simulates and writes the
counted events (one stage per request, as the pipeline counts them) as JSON lines to a pipe; this process
decodes them and runs the real ``kubeguard scan --db`` path on them (``run_scan(events=...,
history_url=...)``: every detector, the real ``ActivityRecorder`` fed by the pipeline's observers and
flushed in blocks by ``ScanHistory``), so the roll-ups, entities, edges, first-seen pairs and the scan's
findings are exactly what the product writes. Nothing goes through a file: ten million simulated events
are about 14 GB of JSON.

What 10,000,000 events came out as (seed 11): 4 clusters over 1,608 hours (67 days, inside the default
90-day retention); 41,887 distinct calls (shapes) in 773,296 hourly rows; 58 subjects, 86 IP addresses,
27 user agents, 11,989 pods, 4,158 workloads, 1,987 images, 64 namespaces; 96,028 edges; 476 first-seen
pairs; 50 findings. 96.6 MB as SQLite (9.7 MB per million events, findings included) and 151 MiB of
activity tables on PostgreSQL (15.1 MiB per million); built in 464 s on a shared 2-core machine (load 5).
Realistic: controllers' watches and leases, kubelets, rollouts that churn pod names and images, people's
working hours, the attacks; every page's busiest entities (the API server's loopback address, the kubelet
user agent, the controllers) are as busy per hour as in a real cluster of this size. Not covered: a fleet
with thousands of identities or addresses (the simulated clusters have few), which would add shapes per
hour but not rows per entity.

The result is a SQLite store kept at ``--history-cache`` (built on first use): a SQLite benchmark store
starts as a copy of it, and a PostgreSQL one gets its rows by ``COPY`` (the same rows, so both dialects
answer the same questions over the same data). :func:`describe` counts what is in it, which the
benchmarks print beside their numbers.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
from sqlalchemy import Engine, func, select

from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.graph import schema as tables

#: Counted events per simulated cluster and day at :data:`SCALE` (measured: 1,000,000 events are two
#: clusters over 14 days); the simulation is given a little more time than this predicts and is cut at
#: the asked-for count.
EVENTS_PER_CLUSTER_DAY = 34_000  # a little under the measured 37,000
SCALE = 1.5
#: Tables the history copy carries to another store: the activity store and what the scan filed. Their
#: count tables are left out: the finding triggers (and the findings fill) keep them.
COPIED_TABLES = (
    "kg_detectors",
    "kg_findings",
    "kg_activity_shapes",
    "kg_activity",
    "kg_entities",
    "kg_first_seen",
    "kg_edges",
)
_BLOCK = 1 << 22


def _simulate(write_fd: int, events: int, clusters: int, seed: int) -> None:
    """Child process: the counted events of the simulated fleet, one JSON line each, cluster included."""
    from kubeguard.sim import SimConfig, Simulator
    from kubeguard.sim.simulator import cluster_names

    days = math.ceil(events / (EVENTS_PER_CLUSTER_DAY * clusters) * 1.1) + 1
    config = SimConfig(seed=seed, duration=timedelta(days=days), clusters=cluster_names(clusters),
                       attacks=["all"], scale=SCALE, learning=timedelta(days=2))
    written = 0
    buffer: list[bytes] = []
    with os.fdopen(write_fd, "wb", buffering=_BLOCK) as out:
        for cluster, event in Simulator(config).stream():
            connect = (event.get("objectRef") or {}).get("subresource") in ("exec", "attach", "portforward")
            if event.get("stage") not in ("ResponseComplete", "ResponseStarted" if connect else ""):
                continue
            event["cluster"] = cluster
            buffer.append(orjson.dumps(event))
            written += 1
            if len(buffer) >= 2000 or written >= events:
                buffer.append(b"")
                out.write(b"\n".join(buffer))
                buffer = []
            if written >= events:
                break


def _read_events(read_fd: int) -> Iterator[AuditEvent]:
    """This process: the child's lines decoded into events (the cluster is a field of the line)."""
    decoder = msgspec.json.Decoder(AuditEvent)
    rest = b""
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        while True:
            chunk = stream.read(_BLOCK)
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield from decoder.decode_lines(data[:cut])
    if rest.strip():
        yield from decoder.decode_lines(rest)


def build(path: Path, events: int, *, clusters: int = 4, seed: int = 11) -> float:
    """Simulate ``events`` counted events into a new SQLite store at ``path``; returns the seconds taken."""
    from kubeguard.scan import run_scan

    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    read_fd, write_fd = os.pipe()
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_simulate, args=(write_fd, events, clusters, seed))
    child.start()
    os.close(write_fd)
    settings = Settings()
    settings.intel.use_default_feeds = False
    try:
        run_scan([], settings, events=_read_events(read_fd), history_url=f"sqlite:///{partial}")
    finally:
        child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the simulation failed (exit code {child.exitcode})")
    partial.rename(path)
    return time.perf_counter() - started


def ensure(path: Path, events: int, *, clusters: int = 4) -> Path:
    """The history store at ``path``, built first when it is missing."""
    if not path.exists():
        print(f"simulating {events:,} counted events ({clusters} clusters) into {path} ...", flush=True)
        seconds = build(path, events, clusters=clusters)
        print(f"  built in {seconds:.0f} s", flush=True)
    return path


def copy_into(template: Path, engine: Engine) -> None:
    """Every row of :data:`COPIED_TABLES` from the history store into ``engine``'s store (which is empty of
    them): a SQLite store should rather start as a copy of the file (:func:`copy_file`); PostgreSQL gets
    them by ``COPY``."""
    source = sqlite3.connect(f"file:{template}?mode=ro", uri=True)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        postgres = engine.dialect.name == "postgresql"
        for table in COPIED_TABLES:
            rows = source.execute(f"SELECT * FROM {table}")  # noqa: S608 - names from the constant above
            columns = [column[0] for column in rows.description]
            booleans = _boolean_columns(engine, table)
            names = ", ".join(columns)
            if postgres:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(_booleans(row, columns, booleans))
            else:
                marks = ", ".join("?" * len(columns))
                while block := rows.fetchmany(10_000):
                    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", block)
        raw.commit()
        if postgres:  # what autovacuum does to tables that grew this much
            for table in COPIED_TABLES:
                cursor.execute(f"ANALYZE {table}")
            raw.commit()
        cursor.close()
    finally:
        raw.close()
        source.close()


def _boolean_columns(engine: Engine, table: str) -> set[str]:
    from sqlalchemy import Boolean

    from kubeguard.store import schema as store_schema

    found = store_schema.metadata.tables.get(table)
    if found is None:
        found = tables.metadata.tables.get(table)
    return {c.name for c in found.columns if isinstance(c.type, Boolean)} if found is not None else set()


def _booleans(row: tuple, columns: list[str], booleans: set[str]) -> tuple:
    if not booleans:
        return row
    return tuple(bool(value) if name in booleans and value is not None else value
                 for name, value in zip(columns, row, strict=True))


def copy_file(template: Path, target: Path) -> None:
    shutil.copyfile(template, target)


def describe(engine: Engine) -> dict[str, Any]:
    """What the history holds: counted events, hours, shapes, hourly rows, entities per kind, edges, pairs."""
    with engine.connect() as conn:
        counts = tables.activity_counts
        events, rows, first, last = conn.execute(
            select(func.sum(counts.c["count"]), func.count(), func.min(counts.c.hour_ms), func.max(counts.c.hour_ms))
        ).one()
        shapes = conn.execute(select(func.count()).select_from(tables.activity_shapes)).scalar()
        clusters = conn.execute(select(func.count(tables.activity_shapes.c.cluster.distinct()))).scalar()
        kinds = dict(
            conn.execute(
                select(tables.entities.c.kind, func.count()).group_by(tables.entities.c.kind)
            ).all()
        )
        edges = conn.execute(select(func.count()).select_from(tables.edges)).scalar()
        pairs = conn.execute(select(func.count()).select_from(tables.first_seen)).scalar()
    return {
        "events": int(events or 0),
        "hours": int(((last or 0) - (first or 0)) // 3_600_000 + 1) if rows else 0,
        "clusters": clusters,
        "shapes": shapes,
        "hourly rows": rows,
        "entities": kinds,
        "edges": edges,
        "first-seen pairs": pairs,
    }


def summary_line(info: dict[str, Any]) -> str:
    entities = ", ".join(f"{count:,} {kind}" for kind, count in sorted(info["entities"].items()))
    return (
        f"{info['events']:,} counted events over {info['hours']:,} hours in {info['clusters']} clusters: "
        f"{info['shapes']:,} shapes, {info['hourly rows']:,} hourly rows, {info['edges']:,} edges, "
        f"{info['first-seen pairs']:,} first-seen pairs; entities: {entities}"
    )
