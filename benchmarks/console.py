"""Server time of every console page and API route at a million stored events (budget: 300 ms a page).

Builds two stores in one run: the baseline from the lab log (about a thousand events) and the large one from
the simulator's traffic (two clusters, two weeks, every attack) cut at a million counted events and scanned
with ``--db``; then serves both in-process and
times each deep link (median of several requests, after one warm-up). Prints milliseconds per page for both
stores, the ratio large/baseline, and whether the page fits the 300 ms budget.

    python benchmarks/console.py [--events 1000000] [--store PATH]   (--store reuses, or builds and keeps, it)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import func, select
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from scan import SAMPLE  # noqa: E402

from kubeguard.api.app import build_context, create_app  # noqa: E402
from kubeguard.api.options import serve_options  # noqa: E402
from kubeguard.config import Settings  # noqa: E402
from kubeguard.graph import schema as tables  # noqa: E402
from kubeguard.scan import run_scan  # noqa: E402
from kubeguard.store import schema as store_tables  # noqa: E402

BUDGET_MS = 300.0
REQUESTS = 5


def build_large_logs(workdir: Path, counted: int) -> list[tuple[str, Path]]:
    """The simulator's two clusters over two weeks (attacks from the third day), one file per cluster, keeping
    only the events the pipeline counts (one stage per request), until ``counted`` of them are written."""
    from datetime import timedelta

    import orjson

    from kubeguard.sim import SimConfig, Simulator
    from kubeguard.sim.simulator import DEFAULT_CLUSTERS

    clusters = list(DEFAULT_CLUSTERS[:2])
    config = SimConfig(seed=11, duration=timedelta(days=14), clusters=clusters, attacks=["all"], scale=1.5,
                       learning=timedelta(days=2))
    files = {name: (workdir / f"{name}.jsonl").open("wb") for name in clusters}
    written = 0
    try:
        for cluster, event in Simulator(config).stream():
            connect = (event.get("objectRef") or {}).get("subresource") in ("exec", "attach", "portforward")
            if event.get("stage") not in ("ResponseComplete", "ResponseStarted" if connect else ""):
                continue
            files[cluster].write(orjson.dumps(event) + b"\n")
            written += 1
            if written >= counted:
                break
    finally:
        for handle in files.values():
            handle.close()
    return [(name, workdir / f"{name}.jsonl") for name in clusters]


def build_store(url: str, log: Path, cluster: str | None = None) -> None:
    settings = Settings()
    settings.intel.use_default_feeds = False
    run_scan([str(log)], settings, cluster=cluster, history_url=url)


def busiest(conn, kind: str) -> str:
    table = tables.entities
    row = conn.execute(
        select(table.c.key).where(table.c.kind == kind).order_by(table.c.events.desc()).limit(1)
    ).first()
    return row[0] if row else ""


def deep_links(context) -> list[tuple[str, str]]:
    """(name, path) of every page kind, pointed at the busiest entities of the store."""
    with context.engine.connect() as conn:
        finding = conn.execute(
            select(store_tables.findings.c.id).order_by(store_tables.findings.c.count.desc()).limit(1)
        ).scalar()
        pods = conn.execute(
            select(tables.entities.c.key).where(tables.entities.c.kind == "pod").order_by(
                func.length(tables.entities.c.attrs).desc()).limit(1)
        ).scalar()
        keys = {kind: busiest(conn, kind) for kind in ("subject", "ip", "cluster", "image", "namespace")}
    links = [
        ("summary", "/console/"),
        ("findings list", "/console/findings"),
        ("finding", f"/console/findings/{finding}"),
        ("suppress form", f"/console/findings/{finding}/suppress"),
        ("subject (busiest)", f"/console/entities/subject/{quote(keys['subject'], safe='')}"),
        ("ip (busiest)", f"/console/entities/ip/{keys['ip']}"),
        ("cluster", f"/console/entities/cluster/{keys['cluster']}"),
        ("pod", f"/console/entities/pod/{quote(pods or '', safe='/')}"),
        ("image", f"/console/entities/image/{quote(keys['image'], safe='/:@')}"),
        ("namespace", f"/console/entities/namespace/{quote(keys['namespace'], safe='/')}"),
        ("graph API (finding, depth 2)", f"/api/graph/finding/{finding}?depth=2"),
        ("search", "/console/search?q=system"),
    ]
    return links


def time_pages(url: str) -> tuple[dict[str, float], int]:
    settings = Settings()
    settings.intel.use_default_feeds = False
    context, _drainer = build_context(settings, serve_options({}), url, open_access=True, mutual_tls=False)
    with context.engine.connect() as conn:
        events = int(conn.execute(select(func.sum(tables.activity.c["count"]))).scalar() or 0)
    results: dict[str, float] = {}
    with TestClient(create_app(context, None), base_url="http://127.0.0.1") as client:
        for name, path in deep_links(context):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            samples = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
            results[name] = statistics.median(samples)
    return results, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, help="large store to reuse, or to build and keep")
    parser.add_argument("--events", type=int, default=1_000_000, help="counted events in the large store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        small = f"sqlite:///{workdir / 'small.db'}"
        build_store(small, SAMPLE)
        large_path = args.store or workdir / "large.db"
        if not large_path.exists():
            print(f"simulating {args.events:,} counted events and scanning them into {large_path} ...", flush=True)
            logs = build_large_logs(workdir, args.events)
            started = time.perf_counter()
            for cluster, log in logs:
                build_store(f"sqlite:///{large_path}", log, cluster)
            print(f"  stored in {time.perf_counter() - started:.0f} s", flush=True)
        baseline, small_events = time_pages(small)
        large, large_events = time_pages(f"sqlite:///{large_path}")
    print(f"server time per page, median of {REQUESTS} requests (budget {BUDGET_MS:.0f} ms)")
    print(f"{'page':32}{f'{small_events:,} ev':>14}{f'{large_events:,} ev':>16}{'ratio':>8}  budget")
    for name, ms in large.items():
        verdict = "ok" if ms <= BUDGET_MS else "OVER"
        print(f"{name:32}{baseline[name]:>11.1f} ms{ms:>13.1f} ms{ms / baseline[name]:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
