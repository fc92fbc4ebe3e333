"""ListFindings, GetFindingsStatistics and GetFindings at scale, on SQLite and PostgreSQL.

Fills a fresh store with ``--count`` synthetic findings (default 1,000,000; bulk inserts through the same
``row_values`` the recorder uses), then times each query as the API runs it (the route's worker function,
without HTTP) and prints p50/p95 per query and the process's peak RSS. The baseline is the old code path
(every matching finding loaded and evaluated in Python), measured in the same run on a smaller store
(``--baseline-count``, default 20,000) next to the new path on that same store: the ratio is old/new.

With ``--history-events N`` (10,000,000 for issue 14's "activity history of 10 million events") each store
first gets the activity history of N simulated counted events (``activity_history.py``: built once into
``--history-cache`` and copied into every store, so both dialects hold the same rows), then the findings;
besides the finding queries, every console page and JSON API route (``console.py``'s deep links) is then
timed in the same process, so the peak RSS printed covers both.

Run: ``.venv/bin/python benchmarks/queries.py [--count 1000000] [--dialects sqlite,postgresql]
[--history-events 10000000 [--history-cache PATH]]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import activity_history
import orjson
from sqlalchemy import Connection, Engine, inspect

from kubeguard.api.console import data as console_data
from kubeguard.api.guardduty import findings as api
from kubeguard.api.guardduty import statistics as stats
from kubeguard.api.pagination import page
from kubeguard.store import finding_counts, schema
from kubeguard.store import findings as finding_store
from kubeguard.store.database import open_engine

DETECTOR = "b" * 32
TYPES = [
    "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",
    "Execution:Kubernetes/ExecInKubeSystemPod",
    "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
    "Persistence:Kubernetes/ContainerWithSensitiveMount",
    "Policy:Kubernetes/AnonymousAccessGranted",
    "CredentialAccess:Kubernetes/MaliciousIPCaller",
    "Impact:Kubernetes/MaliciousIPCaller",
    "Policy:Kubernetes/ExposedDashboard",
]
CLUSTERS = [f"cluster-{n}" for n in range(20)]
ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
START_MS = 1_700_000_000_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def synthetic(index: int, rng: random.Random) -> dict[str, Any]:
    created = START_MS + rng.randrange(90 * 86_400_000)
    updated = created + rng.randrange(3_600_000)
    created_at, updated_at = _iso(created), _iso(updated)
    return {
        "schemaVersion": "2.0",
        "accountId": rng.choice(ACCOUNTS),
        "region": "us-east-1",
        "partition": "aws",
        "id": f"{index:08x}{rng.getrandbits(96):024x}",
        "type": rng.choice(TYPES),
        "title": "Synthetic finding",
        "description": "A finding made up by benchmarks/queries.py.",
        "severity": rng.choice([2.0, 5.0, 5.0, 8.0]),
        "confidence": 5,
        "createdAt": created_at,
        "updatedAt": updated_at,
        "resource": {
            "resourceType": "EKSCluster",
            "eksClusterDetails": {"name": rng.choice(CLUSTERS)},
            "kubernetesDetails": {
                "kubernetesUserDetails": {"username": f"user-{rng.randrange(500)}", "groups": ["system:authenticated"]},
                "kubernetesWorkloadDetails": {"namespace": f"ns-{rng.randrange(50)}", "name": "w", "type": "pods"},
            },
        },
        "service": {
            "serviceName": "guardduty",
            "detectorId": DETECTOR,
            "archived": rng.random() < 0.1,
            "count": rng.randrange(1, 20),
            "eventFirstSeen": created_at,
            "eventLastSeen": updated_at,
            "action": {"actionType": "KUBERNETES_API_CALL", "kubernetesApiCallAction": {"verb": "create"}},
        },
    }


def _row(finding: dict[str, Any]) -> dict[str, Any]:
    """``row_values(finding)`` for a :func:`synthetic` finding, read straight from its known shape.

    ``row_values`` runs the criteria evaluator per field (about 50 us a finding); this reads the same
    fields directly. :func:`_chunk_rows` checks it against ``row_values`` on a sample of every chunk.
    """
    resource, service = finding["resource"], finding["service"]
    kubernetes = resource["kubernetesDetails"]
    created, updated = _ms(finding["createdAt"]), _ms(finding["updatedAt"])
    return {
        "id": finding["id"],
        "detector_id": service["detectorId"],
        "type": finding["type"],
        "severity": float(finding["severity"]),
        "cluster": resource["eksClusterDetails"]["name"],
        "archived": service["archived"],
        "count": service["count"],
        "created_at_ms": created,
        "updated_at_ms": updated,
        "event_last_seen_ms": updated,
        "body": orjson.dumps(finding).decode(),
        "account_id": finding["accountId"],
        "event_first_seen_ms": created,
        "username": kubernetes["kubernetesUserDetails"]["username"],
        "namespace": kubernetes["kubernetesWorkloadDetails"]["namespace"],
        "resource_type": resource["resourceType"],
        "regular": True,
    }


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000 + 0.5)


#: Findings generated per work unit; the units are made in worker processes while the parent writes.
CHUNK = 10_000
COLUMNS = [column.name for column in schema.findings.columns]


def _chunk_rows(args: tuple[int, int, int]) -> list[tuple[Any, ...]]:
    """Rows ``first``..``last`` (exclusive) in ``COLUMNS`` order, as the recorder stores them."""
    first, last, seed = args
    rng = random.Random(seed * 1_000_003 + first)
    rows = []
    for index in range(first, last):
        finding = synthetic(index, rng)
        row = _row(finding)
        if index % 500 == 0 and row != finding_store.row_values(finding):
            raise AssertionError(f"the fast row of finding {index} differs from row_values")
        rows.append(tuple(row[name] for name in COLUMNS))
    return rows


def _chunks(count: int, seed: int, workers: int) -> Iterator[list[tuple[Any, ...]]]:
    units = [(first, min(count, first + CHUNK), seed) for first in range(0, count, CHUNK)]
    if workers <= 1:
        yield from map(_chunk_rows, units)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(_chunk_rows, units)


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every index on ``kg_findings`` except its primary key, as the store has them."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kg_findings'"
            " AND schemaname = current_schema() AND indexname <> 'kg_findings_pkey'"
        )
    else:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'kg_findings' AND sql IS NOT NULL"
        )
    return [(name, sql) for name, sql in rows]


def fill(engine: Engine, count: int, seed: int = 7, workers: int = 2) -> list[str]:
    """Insert ``count`` findings; returns a sample of ids for GetFindings.

    Rows are made in worker processes while this one writes them in large transactions: PostgreSQL through
    ``COPY`` (psycopg 3's ``cursor.copy``), SQLite through one prepared ``executemany`` per chunk. The
    secondary indexes are dropped for the load and re-created from their own definitions afterwards (a
    sorted build instead of a million random B-tree inserts); likewise the count triggers, whose cells are
    then counted in one GROUP BY (the same cells the triggers keep: tests/store/test_finding_counts.py).
    """
    sample: list[str] = []
    with engine.begin() as conn:
        conn.execute(
            schema.detectors.insert().values(
                id=DETECTOR,
                status="ENABLED",
                publishing_frequency="SIX_HOURS",
                features="[]",
                tags="{}",
                created_at_ms=START_MS,
                updated_at_ms=START_MS,
            )
        )
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        finding_counts.uninstall(conn)
    every = max(1, count // 2000)
    postgres = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if postgres:
            statement = f"COPY kg_findings ({', '.join(COLUMNS)}) FROM STDIN"
        else:
            statement = f"INSERT INTO kg_findings ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
            cursor.execute("PRAGMA synchronous=OFF")  # a throwaway store: the fill's durability is moot
        for rows in _chunks(count, seed, workers):
            sample.extend(row[0] for row in rows[::every])
            if postgres:
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(statement, rows)
            raw.commit()
        if postgres:
            cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, create in indexes:
            cursor.execute(create)
        raw.commit()
        cursor.close()
    finally:
        raw.close()
    with engine.begin() as conn:
        finding_counts.install(conn)  # the triggers back, and every cell counted in one GROUP BY
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("SET statement_timeout = 0")
            for table in ("kg_findings", "kg_finding_counts", "kg_finding_day_counts", "kg_finding_window_counts"):
                if inspect(conn).has_table(table):
                    conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return sample


CRITERION = {"severity": {"gte": 5}, "service.archived": {"eq": ["false"]}, "type": {"neq": [TYPES[0]]}}
UNARCHIVED = {"service.archived": {"eq": ["false"]}}
#: The console's "last 7 days": a criterion the pre-aggregated cells cannot answer (GROUP BY over findings).
LAST_WEEK = {"updatedAt": {"gte": START_MS + 83 * 86_400_000}}
#: The same from 00:01 of a day, unarchived: a partial first day of almost a whole day (the most findings a
#: window's edge day can hold for the day cells, which answer only the whole days).
WEEK_FROM_MIDNIGHT = {
    "updatedAt": {"gte": (START_MS // 86_400_000 + 83) * 86_400_000 + 60_000},
    "service.archived": {"eq": ["false"]},
}


def new_queries(ctx: Any, ids: list[str]) -> dict[str, Callable[[], Any]]:
    def first_page(criterion: dict[str, Any], sort: tuple[str, bool]) -> Callable[[], Any]:
        query = {"c": criterion, "s": list(sort), "d": DETECTOR}
        return lambda: api._list_page(ctx, DETECTOR, criterion, sort, 50, None, query)

    def deep_pages(criterion: dict[str, Any], sort: tuple[str, bool], pages: int) -> Callable[[], Any]:
        """Each call fetches one of pages 2..``pages`` (in turn), by the token the page before gave."""
        query = {"c": criterion, "s": list(sort), "d": DETECTOR}
        tokens: list[str] = []
        token = None
        for _ in range(pages - 1):
            _, token = api._list_page(ctx, DETECTOR, criterion, sort, 50, token, query)
            tokens.append(token)
        turn = iter(range(10**9))
        return lambda: api._list_page(ctx, DETECTOR, criterion, sort, 50, tokens[next(turn) % len(tokens)], query)

    cluster = {"resource.eksClusterDetails.name": {"eq": ["cluster-3"]}}
    kind = {"type": {"eq": [TYPES[2]]}}
    queries: dict[str, Callable[[], Any]] = {
        "list: no criteria, updatedAt DESC": first_page({}, ("updatedAt", True)),
        "list: unarchived, updatedAt DESC": first_page(UNARCHIVED, ("updatedAt", True)),
        "list: unarchived, severity DESC": first_page(UNARCHIVED, ("severity", True)),
        "list: criteria, severity DESC": first_page(CRITERION, ("severity", True)),
        "list: type eq, severity DESC": first_page(kind, ("severity", True)),
        "list: cluster eq, updatedAt DESC": first_page(cluster, ("updatedAt", True)),
        "list: archived, type ASC": first_page({"service.archived": {"eq": ["true"]}}, ("type", False)),
        "list: criteria, createdAt ASC, pages 2-20": deep_pages(CRITERION, ("createdAt", False), 20),
        "list: username eq, service.count DESC": first_page(
            {"resource.kubernetesDetails.kubernetesUserDetails.username": {"eq": ["user-7"]}}, ("service.count", True)
        ),
        "statistics: COUNT_BY_SEVERITY": lambda: api._statistics(ctx, DETECTOR, {}, None),
        "statistics: COUNT_BY_SEVERITY, criteria": lambda: api._statistics(ctx, DETECTOR, CRITERION, None),
    }
    for group_by in stats.GROUP_BY:
        queries[f"statistics: groupBy {group_by}"] = lambda g=group_by: api._statistics(ctx, DETECTOR, {}, g)
    for group_by in stats.GROUP_BY:
        queries[f"statistics: groupBy {group_by}, unarchived"] = lambda g=group_by: api._statistics(
            ctx, DETECTOR, UNARCHIVED, g
        )
    queries["statistics: COUNT_BY_SEVERITY, last 7 days"] = lambda: api._statistics(ctx, DETECTOR, LAST_WEEK, None)
    for group_by in stats.GROUP_BY:
        queries[f"statistics: groupBy {group_by}, last 7 days"] = lambda g=group_by: api._statistics(
            ctx, DETECTOR, LAST_WEEK, g
        )
    for group_by in ("FINDING_TYPE", "RESOURCE"):
        queries[f"statistics: groupBy {group_by}, 7 days from 00:01"] = lambda g=group_by: api._statistics(
            ctx, DETECTOR, WEEK_FROM_MIDNIGHT, g
        )
    rng = random.Random(3)

    def get_findings() -> None:
        with ctx.engine.connect() as conn:
            finding_store.get_many(conn, DETECTOR, rng.sample(ids, min(50, len(ids))))

    queries["GetFindings: 50 ids"] = get_findings

    def console_summary() -> None:
        with ctx.engine.connect() as conn:
            console_data.summary(conn, None, None, {})

    queries["console summary (/console/), default scope"] = console_summary

    def console_findings(filters: dict[str, str], page_number: int, sort: str) -> Callable[[], Any]:
        def run() -> None:
            with ctx.engine.connect() as conn:
                console_data.findings_list(conn, filters, page_number, sort)

        return run

    queries["console findings list (/console/findings), default filters"] = console_findings({}, 1, "updated")
    queries["console findings list, high severity, page 3, by count"] = console_findings(
        {"severity": "high"}, 3, "count")
    return queries


def old_queries(ctx: Any) -> dict[str, Callable[[], Any]]:
    """The same questions answered the way main did before: load every match, then sort or group."""

    def list_page(criterion: dict[str, Any], attribute: str, descending: bool) -> Callable[[], Any]:
        def run() -> None:
            found = api.matching(ctx, DETECTOR, criterion)
            page([f["id"] for f in api.sorted_findings(found, attribute, descending)], None, 50, {})

        return run

    queries: dict[str, Callable[[], Any]] = {
        "list: no criteria, updatedAt DESC": list_page({}, "updatedAt", True),
        "list: criteria, severity DESC": list_page(CRITERION, "severity", True),
        "list: unarchived, updatedAt DESC": list_page(UNARCHIVED, "updatedAt", True),
        "statistics: COUNT_BY_SEVERITY": lambda: stats.count_by_severity(api.matching(ctx, DETECTOR, {})),
    }
    for group_by in stats.GROUP_BY:
        queries[f"statistics: groupBy {group_by}"] = lambda g=group_by: stats.group(
            api.matching(ctx, DETECTOR, {}), g, True
        )
    return queries


def timings(query: Callable[[], Any], rounds: int) -> tuple[float, float, float]:
    """(p50, p95) of wall time and the p50 of this process's CPU time, in ms.

    On a shared machine wall time includes waiting for a core; for SQLite, which runs in this process, the
    CPU time is the query's own cost (for PostgreSQL it is only the client's part).
    """
    samples, cpu = [], []
    query()  # warm caches
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        query()
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, statistics.median(cpu)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """The options naming the stores a benchmark fills: which dialects, and where PostgreSQL is."""
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--postgres-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=test")


@contextmanager
def store(
    dialect: str, directory: Path, postgres_url: str, postgres_dsn: str, history: Path | None = None
) -> Iterator[Engine]:
    """A fresh store of ``dialect``, holding the activity history store ``history``'s rows when given."""
    if dialect == "sqlite":
        path = directory / f"bench-{uuid.uuid4().hex[:6]}.db"
        if history is not None:
            activity_history.copy_file(history, path)
        engine = open_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    import psycopg

    # A prefix of its own: other benchmarks' schemas are kg_bench_*, and clean-ups of those must miss this one.
    name = f"kg_querybench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
        try:
            engine = open_engine(f"{postgres_url}?options=-csearch_path%3D{name}")
            if history is not None:
                activity_history.copy_into(history, engine)
            yield engine
            engine.dispose()
        finally:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def _fill_apart(engine: Engine, count: int) -> tuple[list[str], float]:
    """Fill in a child process, so this process's peak RSS is the queries' alone; (sample ids, seconds)."""
    url = engine.url.render_as_string(hide_password=False)
    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)

    def child() -> None:
        started = time.perf_counter()
        filler = open_engine(url)
        send.send((fill(filler, count), time.perf_counter() - started))
        filler.dispose()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    send.close()  # the child's copy is the only writer left: its exit ends recv() if the fill fails
    try:
        ids, seconds = receive.recv()
    except EOFError:
        process.join()
        raise SystemExit(f"the fill failed (exit code {process.exitcode})") from None
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"the fill failed (exit code {process.exitcode})")
    return ids, seconds


def _wanted(name: str, args: argparse.Namespace) -> bool:
    return args.only in name and name not in args.skip.split(",")


def _time_console(engine: Engine, rounds: int, wanted: Callable[[str], bool]) -> None:
    """Every console page and JSON API route (``console.py``'s deep links), served in this process."""
    import console

    url = engine.url.render_as_string(hide_password=False)
    pages, _ = console.time_pages(url, rounds, wanted)
    for name, (p50, p95, cpu) in pages.items():
        verdict = "" if p95 <= console.BUDGET_MS else "  OVER the page budget"
        print(f"  {'page: ' + name:48s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (cpu p50 {cpu:6.1f} ms){verdict}",
              flush=True)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--baseline-count", type=int, default=20_000, help="0 skips the old-path comparison")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--history-events", type=int, default=0, help="activity history of this many events")
    parser.add_argument("--history-clusters", type=int, default=4, help="simulated clusters in that history")
    parser.add_argument("--history-cache", type=Path, help="history store to reuse, or to build and keep")
    parser.add_argument("--only", default="", help="time only the rows whose name contains this")
    parser.add_argument("--skip", default="", help="comma-separated names of rows not to time")
    add_store_options(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        history = None
        if args.history_events:
            cache = args.history_cache or Path(tmp) / f"history-{args.history_events}.db"
            history = activity_history.ensure(cache, args.history_events, clusters=args.history_clusters)
        for dialect in args.dialects.split(","):
            with store(dialect, Path(tmp), args.postgres_url, args.postgres_dsn, history) as engine:
                ids, seconds = _fill_apart(engine, args.count)
                print(f"\n{dialect}: {args.count:,} findings ({seconds:.0f} s to fill)")
                if history is not None:
                    print(f"  history: {activity_history.summary_line(activity_history.describe(engine))}")
                before = _peak_rss_mib()
                for name, query in new_queries(SimpleNamespace(engine=engine), ids).items():
                    if not _wanted(name, args):
                        continue
                    p50, p95, cpu = timings(query, args.rounds)
                    print(f"  {name:48s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (cpu p50 {cpu:6.1f} ms)", flush=True)
                if history is not None:
                    _time_console(engine, args.rounds, lambda name: _wanted(name, args))
                print(f"  peak RSS of the querying process: {before:.0f} MiB before, {_peak_rss_mib():.0f} MiB after")
        for dialect in args.dialects.split(",") if args.baseline_count else []:
            with store(dialect, Path(tmp), args.postgres_url, args.postgres_dsn) as engine:
                ids, seconds = _fill_apart(engine, args.baseline_count)
                ctx = SimpleNamespace(engine=engine)
                print(f"\n{dialect}: baseline store of {args.baseline_count:,} findings ({seconds:.0f} s to fill)")
                new = new_queries(ctx, ids)
                for name, query in old_queries(ctx).items():
                    old_p50, _, _ = timings(query, 3)
                    new_p50, _, _ = timings(new[name], args.rounds)
                    print(
                        f"  {name:48s} old {old_p50:9.1f} ms  new {new_p50:7.1f} ms  old/new {old_p50 / new_p50:8.1f}x"
                    )


if __name__ == "__main__":
    main()
