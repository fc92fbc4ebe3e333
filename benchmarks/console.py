"""Server time of every console page and API route at a million stored events (budget: 300 ms a page).

Builds two stores in one run: the baseline from the lab log (about a thousand events) and the large one from
the simulator's traffic (two clusters by default, two weeks for a million events, every attack) cut at
``--events`` counted events and scanned with ``--db`` (``activity_history.py``: the simulator feeds the
scan through a pipe, no file); then serves both in-process and times each deep link and JSON API route
(median and p95 of several requests, after one warm-up). Prints milliseconds per page for both stores, the
ratio large/baseline, and whether the page fits the 300 ms budget. ``benchmarks/queries.py
--history-events`` times the same links on SQLite and PostgreSQL with a million findings stored as well.

    python benchmarks/console.py [--events 1000000] [--clusters 2] [--store PATH]
    (--store reuses, or builds and keeps, the large store)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import func, select
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

import activity_history  # noqa: E402
from scan import SAMPLE  # noqa: E402

from kubeguard.api.app import build_context, create_app  # noqa: E402
from kubeguard.api.options import serve_options  # noqa: E402
from kubeguard.config import Settings  # noqa: E402
from kubeguard.graph import schema as tables  # noqa: E402
from kubeguard.scan import run_scan  # noqa: E402
from kubeguard.store import schema as store_tables  # noqa: E402

BUDGET_MS = 300.0
REQUESTS = 5
#: A wider scope than the pages' default 24 h: an investigator looking at last week.
WEEK_MS = 7 * 86_400_000


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
    """(name, path) of every page kind and JSON API route, pointed at the busiest entities of the store.

    Two findings: the one seen most often (in a store filled with synthetic findings, one whose entities
    the activity store does not know) and the simulated one that names the most entities (its page draws
    the largest graph and reads its subject's activity)."""
    edges = tables.edges
    with context.engine.connect() as conn:
        finding = conn.execute(
            select(store_tables.findings.c.id).order_by(store_tables.findings.c.count.desc()).limit(1)
        ).scalar()
        named = conn.execute(
            select(edges.c.src_key).where(edges.c.src_kind == "finding").group_by(edges.c.src_key)
            .order_by(func.count().desc(), edges.c.src_key).limit(1)
        ).scalar() or finding
        pods = conn.execute(
            select(tables.entities.c.key).where(tables.entities.c.kind == "pod").order_by(
                func.length(tables.entities.c.attrs).desc()).limit(1)
        ).scalar()
        keys = {kind: busiest(conn, kind) for kind in ("subject", "ip", "cluster", "image", "namespace")}
        subject_last = conn.execute(
            select(tables.entities.c.last_seen_ms).where(
                tables.entities.c.kind == "subject", tables.entities.c.key == keys["subject"])
        ).scalar() or 0
    subject = quote(keys["subject"], safe="")
    end_ms = subject_last - subject_last % 3_600_000 + 3_600_000
    week = f"start={_iso(end_ms - WEEK_MS)}&end={_iso(end_ms)}"
    criterion = quote('{"severity": {"gte": 7}}', safe="")
    links = [
        ("summary", "/console/"),
        ("findings list", "/console/findings"),
        ("finding (seen most)", f"/console/findings/{finding}"),
        ("finding (most entities)", f"/console/findings/{named}"),
        ("suppress form", f"/console/findings/{finding}/suppress"),
        ("subject (busiest)", f"/console/entities/subject/{subject}"),
        ("subject (busiest), 7 days", f"/console/entities/subject/{subject}?{week}"),
        ("ip (busiest)", f"/console/entities/ip/{keys['ip']}"),
        ("cluster", f"/console/entities/cluster/{keys['cluster']}"),
        ("cluster, 7 days", f"/console/entities/cluster/{keys['cluster']}?{week}"),
        ("pod", f"/console/entities/pod/{quote(pods or '', safe='/')}"),
        ("image", f"/console/entities/image/{quote(keys['image'], safe='/:@')}"),
        ("namespace", f"/console/entities/namespace/{quote(keys['namespace'], safe='/')}"),
        ("search", "/console/search?q=system"),
        ("API summary", "/api/summary"),
        ("API finding context", f"/api/findings/{named}/context"),
        ("API findings count", f"/api/findings/count?criterion={criterion}"),
        ("API entity subject (newly observed)", f"/api/entities/subject/{subject}"),
        ("API entity ip", f"/api/entities/ip/{keys['ip']}"),
        ("API entity cluster", f"/api/entities/cluster/{keys['cluster']}"),
        ("API activity subject", f"/api/activity/subject/{subject}"),
        ("API activity subject, 7 days", f"/api/activity/subject/{subject}?{week}"),
        ("API activity cluster", f"/api/activity/cluster/{keys['cluster']}"),
        ("API graph finding, depth 2", f"/api/graph/finding/{named}?depth=2"),
        ("API graph subject, depth 2", f"/api/graph/subject/{subject}?depth=2"),
        ("API graph subject, depth 4", f"/api/graph/subject/{subject}?depth=4"),
        ("API search", "/api/search?q=system"),
    ]
    if finding is None:  # a store without findings (a history still being built)
        links = [(name, path) for name, path in links if f"/{finding}" not in path]
    return links


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def time_pages(
    url: str, requests: int = REQUESTS, wanted: Callable[[str], bool] = lambda name: True
) -> tuple[dict[str, tuple[float, float, float]], int]:
    """(median, p95, median CPU) time in ms of each deep link, and the counted events the store holds.

    The CPU time is this whole process's (the test client's thread and the server's): on a shared machine
    the wall time includes waiting for a core, and for SQLite, which runs in this process, the CPU time is
    the page's own cost (for PostgreSQL only the client's part)."""
    settings = Settings()
    settings.intel.use_default_feeds = False
    context, _drainer = build_context(settings, serve_options({}), url, open_access=True, mutual_tls=False)
    with context.engine.connect() as conn:
        events = int(conn.execute(select(func.sum(tables.activity.c["count"]))).scalar() or 0)
    results: dict[str, tuple[float, float, float]] = {}
    with TestClient(create_app(context, None), base_url="http://127.0.0.1") as client:
        for name, path in deep_links(context):
            if not wanted(name):
                continue
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            samples, cpu = [], []
            for _ in range(requests):
                started, started_cpu = time.perf_counter(), time.process_time()
                client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            samples.sort()
            p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
            results[name] = (statistics.median(samples), p95, statistics.median(cpu))
    context.engine.dispose()
    return results, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, help="large store to reuse, or to build and keep")
    parser.add_argument("--events", type=int, default=1_000_000, help="counted events in the large store")
    parser.add_argument("--clusters", type=int, default=2, help="simulated clusters in the large store")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed requests per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        small = f"sqlite:///{workdir / 'small.db'}"
        build_store(small, SAMPLE)
        large_path = activity_history.ensure(args.store or workdir / "large.db", args.events, clusters=args.clusters)
        baseline, small_events = time_pages(small, args.requests)
        large, large_events = time_pages(f"sqlite:///{large_path}", args.requests)
    print(f"server time per page, median and p95 of {args.requests} requests (budget {BUDGET_MS:.0f} ms)")
    head = f"{'page':38}{f'{small_events:,} ev':>14}{f'{large_events:,} ev':>16}"
    print(f"{head}{'p95':>10}{'cpu':>10}{'ratio':>8}  budget")
    for name, (ms, p95, cpu) in large.items():
        verdict = "ok" if p95 <= BUDGET_MS else "OVER"
        ratio = ms / baseline[name][0]
        row = f"{name:38}{baseline[name][0]:>11.1f} ms{ms:>13.1f} ms"
        print(f"{row}{p95:>7.1f} ms{cpu:>7.1f} ms{ratio:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
