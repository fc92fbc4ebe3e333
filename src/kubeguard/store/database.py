"""Open the store and bring its schema up to date.

The default store is a SQLite file in the user's data directory, opened in WAL mode with
``synchronous=FULL``: every commit is fsynced before it returns, which is what lets the webhook acknowledge
a batch as soon as its spool row is committed. PostgreSQL is selected by URL
(``postgresql+psycopg://user@host/db``); its commits are durable by default.

Migrations are numbered functions applied in order inside one transaction at startup, each recorded in
``kg_schema_version``; an upgrade therefore needs no manual step. On PostgreSQL an advisory lock keeps two
processes starting together from migrating at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.exc import DBAPIError

from kubeguard.extras import require
from kubeguard.store import schema

#: An arbitrary constant naming the migration lock in ``pg_advisory_xact_lock``.
_MIGRATION_LOCK_ID = 0x6B756265


def default_url() -> str:
    """A SQLite file in the platform's per-user data directory, created on demand."""
    directory = Path(platformdirs.user_data_dir("kubeguard"))
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'kubeguard.db'}"


#: URL schemes people write for PostgreSQL (libpq's and Heroku's), mapped to the driver kubeguard uses.
_POSTGRES_ALIASES = ("postgres://", "postgresql://")


def url_from_option(db: str | None) -> str:
    """``--db`` accepts a SQLAlchemy URL, a libpq ``postgres://`` URL, or a plain file path (SQLite)."""
    if not db:
        return default_url()
    for alias in _POSTGRES_ALIASES:
        if db.startswith(alias):
            return "postgresql+psycopg://" + db[len(alias) :]
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for other stores and in-memory SQLite)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or ":memory:" in url:
        return None
    return Path(url[len(prefix) :].split("?", 1)[0])


def open_engine(url: str) -> Engine:
    """Create the engine for ``url`` and apply pending migrations."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if url.startswith("postgresql"):
            require("psycopg")
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=8,
            max_overflow=8,
            pool_timeout=STATEMENT_TIMEOUT_SECONDS,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        event.listen(engine, "connect", _postgres_timeouts)
    event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    migrate(engine)
    if engine.dialect.name == "sqlite":
        refresh_sqlite_statistics(engine)
    return engine


#: The tables whose sizes decide the console's and the API's plans.
_ANALYZED_TABLES = ("kg_findings", "kg_activity", "kg_activity_shapes", "kg_entities", "kg_edges", "kg_first_seen")


def analyze_sqlite(conn: Connection, tables: tuple[str, ...] = ()) -> None:
    """Refresh SQLite's planner statistics (all tables unless ``tables`` are named).

    A full ANALYZE, not a sampled one (``PRAGMA analysis_limit``): sampled statistics said a value of
    ``archived`` selects a thousand of a million findings, and the planner chose by that."""
    for table in tables or ("",):
        conn.exec_driver_sql(f"ANALYZE {table}".strip())


def refresh_sqlite_statistics(engine: Engine) -> list[str]:
    """ANALYZE the large tables whose size is ten times off what the statistics say (or that have none).

    SQLite keeps no statistics of its own: without ANALYZE the planner guesses every table's size and each
    index's selectivity, and at a million findings it took an index on severity over the covering ones for
    the findings list (seconds instead of milliseconds). Run at open, so a store that grew since (a scan, a
    server's weeks of batches) is planned from its sizes as they are now. A table is analyzed again only
    once it is ten times larger (or smaller) than when it last was, so the reads add up to about a ninth
    more than one ANALYZE of the store at its final size (3.4 s of CPU for a million findings, once).
    Returns the tables analyzed. A store another process holds locked is left for next time.
    """
    from sqlalchemy.exc import OperationalError

    try:
        with engine.begin() as conn:
            stale = [table for table in _ANALYZED_TABLES if _statistics_are_stale(conn, table)]
            if stale:
                analyze_sqlite(conn, tuple(stale))
    except OperationalError:
        return []
    return stale


def _statistics_are_stale(conn: Connection, table: str) -> bool:
    rows = _estimated_rows(conn, table)
    if rows < 1000:
        return False
    counted = _analyzed_rows(conn, table)
    return counted is None or not counted / 10 <= rows <= counted * 10


def _estimated_rows(conn: Connection, table: str) -> int:
    """About how many rows ``table`` has: its largest rowid where it has one, else count(*).

    An estimate is enough for a tenfold test, and the largest rowid is one index step where count(*) reads
    the whole table at every open (0.27 s at 5 million rows). Retention deletes the oldest rows, so it
    over-counts a pruned table: at worst a shrunken store keeps its old statistics. The roll-up tables are
    keyed without a rowid, and counted.
    """
    ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    measure = "count(*)" if ddl is None or "WITHOUT ROWID" in ddl.upper() else "max(rowid)"
    return conn.exec_driver_sql(f"SELECT {measure} FROM {table}").scalar() or 0  # noqa: S608 - names above


def _analyzed_rows(conn: Connection, table: str) -> int | None:
    """The rows ``table`` had when it was last analyzed (None: never)."""
    if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'").first():
        return None
    stats = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = ?", (table,)).scalars().all()
    return max((int(stat.split()[0]) for stat in stats if stat), default=None)


def _has_statistics(conn: Connection, table: str) -> bool:
    return _analyzed_rows(conn, table) is not None


#: What a NUL character in a string parameter becomes (U+FFFD, the replacement character).
NUL_REPLACEMENT = "\ufffd"


def _clean(value: Any) -> Any:
    return value.replace("\x00", NUL_REPLACEMENT) if isinstance(value, str) and "\x00" in value else value


def _without_nul(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> Any:
    """Replace NUL in every string parameter, on both stores alike.

    PostgreSQL refuses NUL in text (the whole statement fails, and with it the batch or the API call), and
    a NUL can arrive in anything a client names: an image, a finding id, a filter name. Stored values and
    lookups are mapped the same way, so a key with a NUL still finds itself; finding bodies are JSON, where
    NUL is already escaped.
    """
    if isinstance(parameters, dict):
        parameters = {key: _clean(value) for key, value in parameters.items()}
    elif isinstance(parameters, list | tuple):
        # An "insertmanyvalues" batch (executemany with RETURNING) arrives with executemany set but as one
        # flat parameter tuple for a multi-row statement: only a sequence of rows is cleaned row by row.
        if executemany and all(isinstance(row, dict | list | tuple) for row in parameters):
            parameters = [
                {k: _clean(v) for k, v in row.items()} if isinstance(row, dict) else tuple(_clean(v) for v in row)
                for row in parameters
            ]
        else:
            parameters = type(parameters)(_clean(value) for value in parameters)
    return statement, parameters


#: Bounds on every database call: a store that is down or stalled is an error the caller reports (the
#: webhook answers 503 and the API server retries), never a request that hangs for the whole outage.
CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_SECONDS = 30


def _postgres_timeouts(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_SECONDS * 1000}")
        cursor.execute(f"SET lock_timeout = {STATEMENT_TIMEOUT_SECONDS * 1000}")
    dbapi_connection.commit()


#: Pages the SQLite WAL may reach before the commit that crosses it checkpoints (64 MiB of 4 KiB pages),
#: and the size its file is cut back to after a checkpoint. SQLite's default, 1,000 pages, made every fifth
#: webhook commit (a 400-event batch is about 200 pages) copy the WAL into the database and fsync it before
#: the API server got its 200. ``serve`` checkpoints from the drainer's thread instead
#: (:func:`checkpoint_sqlite`); this bound only holds the WAL when nothing does.
WAL_AUTOCHECKPOINT_PAGES = 16_384
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def checkpoint_sqlite(engine: Engine) -> tuple[int, int] | None:
    """Copy the SQLite WAL into the database, without waiting for or blocking any writer (PASSIVE).

    Run off the request path (the drainer, between detection groups), so webhook commits only append to
    the WAL. Returns (frames in the WAL, frames copied), or None on another store. When every frame is
    copied, the next commit starts the WAL over from its beginning.
    """
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        _busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return int(frames), int(copied)


def _create_initial_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _add_blobs(conn: Connection) -> None:
    """Version 2: named blobs for detector state that is one document (the anomaly baselines)."""
    schema.blobs.create(conn, checkfirst=True)


def _add_outbox(conn: Connection) -> None:
    """Version 3: the sinks' durable outbox and GuardDuty publishing destinations."""
    schema.outbox.create(conn, checkfirst=True)
    schema.publishing_destinations.create(conn, checkfirst=True)


def _add_investigations(conn: Connection) -> None:
    """Version 4: Detective-style investigations of a subject (``kubeguard.correlate``)."""
    schema.investigations.create(conn, checkfirst=True)


def _add_source_cursors(conn: Connection) -> None:
    """Version 5: live sources' resume positions and the event ids their overlapping re-reads drop."""
    schema.source_cursors.create(conn, checkfirst=True)
    schema.source_seen.create(conn, checkfirst=True)


def _add_batch_state(conn: Connection) -> None:
    """Version 6: batch done marks, per-cluster versions, anomaly profiles per row, the de-duplication window,
    and each spool body's size (the backlog is bounded in bytes as well as events)."""
    for table in (schema.batches, schema.clusters, schema.profiles, schema.event_keys):
        table.create(conn, checkfirst=True)
    columns = {column["name"] for column in inspect(conn).get_columns("kg_spool")}
    if "body_bytes" not in columns:
        conn.execute(text("ALTER TABLE kg_spool ADD COLUMN body_bytes BIGINT NOT NULL DEFAULT 0"))
        conn.execute(text("UPDATE kg_spool SET body_bytes = length(body)"))
    from kubeguard.batch.state import import_legacy_baselines  # the batch layer builds on the store

    import_legacy_baselines(conn)


def _add_rule_associations(conn: Connection) -> None:
    """Version 7: Custom Detection Rule associations (a rule's LIVE or DRY_RUN mode)."""
    schema.rule_associations.create(conn, checkfirst=True)


def _add_query_columns(conn: Connection) -> None:
    """Version 8: more queried finding fields as indexed columns, back-filled from the stored bodies."""
    from kubeguard.store.finding_migration import add_query_columns

    add_query_columns(conn)


def _add_activity_store(conn: Connection) -> None:
    """Version 9: the activity store behind the console (entities, hourly roll-ups, first-seen, edges)."""
    from kubeguard.graph.schema import metadata as graph_metadata

    graph_metadata.create_all(conn, checkfirst=True)


def _add_bus_failures(conn: Connection) -> None:
    """Version 10: attempts and dead letters of NATS JetStream batches (``kubeguard worker``)."""
    schema.batch_failures.create(conn, checkfirst=True)


def _compress_spool_bodies_with_lz4(conn: Connection) -> None:
    """Version 11: on PostgreSQL, spool bodies are compressed with lz4 instead of the default pglz.

    Every webhook batch is stored as one large value (about 600 KB for 400 events), and its commit is on
    the path of the API server's 200: pglz took about 20 ms a batch, lz4 about 9, and stores it smaller.
    Applies to rows written from now on. A server without lz4 (built without it, or before version 14)
    keeps pglz.
    """
    if conn.dialect.name != "postgresql":
        return
    try:
        with conn.begin_nested():
            conn.execute(text("ALTER TABLE kg_spool ALTER COLUMN body SET COMPRESSION lz4"))
    except DBAPIError:
        pass


def _add_finding_counts(conn: Connection) -> None:
    """Version 12: finding text sorted by code point on PostgreSQL, sort indexes for type, account and
    cluster, a covering updatedAt index on PostgreSQL, and the pre-aggregated finding counts."""
    from kubeguard.store import finding_counts
    from kubeguard.store.finding_migration import sort_text_by_code_point

    sort_text_by_code_point(conn)
    for replaced in ("ix_kg_findings_q_type", "ix_kg_findings_q_account", "ix_kg_findings_detector_updated"):
        conn.execute(text(f"DROP INDEX IF EXISTS {replaced}"))
    for index in schema.findings.indexes:
        index.create(conn, checkfirst=True)
    schema.finding_counts.create(conn, checkfirst=True)
    schema.finding_day_counts.create(conn, checkfirst=True)
    finding_counts.install(conn, finding_counts.VERSION_12)


def _add_finding_window_counts(conn: Connection) -> None:
    """Version 14: the finding counts per day of ``updatedAt`` for statistics over a window; the triggers
    are re-created to keep them, and only the new table is counted."""
    from kubeguard.store import finding_counts

    schema.finding_window_counts.create(conn, checkfirst=True)
    finding_counts.install(conn, rebuilt=finding_counts.AGGREGATES[len(finding_counts.VERSION_12) :])


def _split_activity_into_shapes(conn: Connection) -> None:
    """Version 13: the activity roll-ups as shapes (their strings, once) and hourly counts (integers)."""
    from kubeguard.graph.shapes_migration import split_activity

    split_activity(conn)


def _add_summary_index(conn: Connection) -> None:
    """Version 15: the console summary's index (open or not, cluster, last event time, severity, type),
    so its counts read the scope's index entries instead of every finding."""
    next(i for i in schema.findings.indexes if i.name == "ix_kg_findings_summary").create(conn, checkfirst=True)


def _add_findings_list_indexes(conn: Connection) -> None:
    """Version 16: the console findings list's indexes, so its groups and default page read index entries
    instead of every finding (a million findings took 1.4 s on SQLite without them)."""
    for index in schema.findings.indexes:
        if index.name in ("ix_kg_findings_list_groups", "ix_kg_findings_list_updated"):
            index.create(conn, checkfirst=True)


def _split_spool_bodies(conn: Connection) -> None:
    """Version 17: spool bodies in a table of their own, so marking a batch done and counting the backlog
    no longer rewrite or walk 0.6 MB bodies on SQLite."""
    from kubeguard.store.spool_migration import split_spool_bodies

    split_spool_bodies(conn)


def _add_list_and_graph_sort_indexes(conn: Connection) -> None:
    """Version 18: the console findings list's severity and count sorts, so a page walks index entries
    instead of sorting every open finding (about a second on SQLite at a million findings without them);
    the edges of each end most recent first, replacing those of (kind, key) alone, so the graph reads a
    node's newest edges instead of sorting all of them; then fresh planner statistics on SQLite for the new
    indexes (:func:`analyze_sqlite`)."""
    from kubeguard.graph.schema import edges

    if conn.dialect.name == "postgresql":  # an index over millions of findings may take longer than a query may
        conn.execute(text("SET LOCAL statement_timeout = 0"))
    for index in (*schema.findings.indexes, *edges.indexes):
        if index.name in ("ix_kg_findings_list_severity", "ix_kg_findings_list_count",
                          "ix_kg_edges_src_recent", "ix_kg_edges_dst_recent"):
            index.create(conn, checkfirst=True)
    for replaced in ("ix_kg_edges_src", "ix_kg_edges_dst"):
        conn.execute(text(f"DROP INDEX IF EXISTS {replaced}"))
    if conn.dialect.name == "sqlite":
        analyzed = tuple(table for table in ("kg_findings", "kg_edges") if _has_statistics(conn, table))
        if analyzed:
            analyze_sqlite(conn, analyzed)  # statistics for the new indexes beside the old ones


#: (version, migration). Append only; never edit an entry that has shipped.
MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (1, _create_initial_tables),
    (2, _add_blobs),
    (3, _add_outbox),
    (4, _add_investigations),
    (5, _add_source_cursors),
    (6, _add_batch_state),
    (7, _add_rule_associations),
    (8, _add_query_columns),
    (9, _add_activity_store),
    (10, _add_bus_failures),
    (11, _compress_spool_bodies_with_lz4),
    (12, _add_finding_counts),
    (13, _split_activity_into_shapes),
    (14, _add_finding_window_counts),
    (15, _add_summary_index),
    (16, _add_findings_list_indexes),
    (17, _split_spool_bodies),
    (18, _add_list_and_graph_sort_indexes),
)


def current_version(conn: Connection) -> int:
    versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    return max(versions, default=0)


def migrate(engine: Engine) -> int:
    """Apply every migration newer than the store's version; returns the resulting version.

    Two processes starting on a fresh store must not both migrate it: PostgreSQL serialises them with an
    advisory lock inside the transaction, SQLite with an exclusive lock on a file beside the database.
    """
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is None:
        return _migrate(engine)
    with _file_lock(path.with_name(path.name + ".migrate-lock")):
        return _migrate(engine)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _migrate(engine: Engine) -> int:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        if _is_empty(conn):
            return _create_fresh(conn)
        schema.schema_version.create(conn, checkfirst=True)
        # Every migration not yet recorded, in order, rather than those above the highest one recorded: two
        # branches numbered theirs 13 and 14, and a store that got 14 first still needs 13.
        applied = set(conn.execute(select(schema.schema_version.c.version)).scalars().all())
        for number, step in MIGRATIONS:
            if number not in applied:
                step(conn)
                conn.execute(schema.schema_version.insert().values(version=number, applied_at_ms=now_ms()))
                applied.add(number)
        return max(applied, default=0)


def _is_empty(conn: Connection) -> bool:
    """True for a store without a single table (a new file, a new database or schema)."""
    return not inspect(conn).get_table_names()


#: Migrations whose whole effect is tables, columns and indexes of the current metadata, which a new store
#: gets from ``create_all``; version 12's and 14's count triggers come with it too (the metadata's
#: ``after_create`` hook installs them), and version 13 only reshapes rows a new store does not have. Every
#: other migration (any new one, unless added here) also runs on a new store.
_COVERED_BY_CREATE_ALL = frozenset((*range(1, 11), 12, 13, 14, 15, 16, 18))


def _create_fresh(conn: Connection) -> int:
    """Create a new store at the latest version at once: every table as the migrations leave it, without
    the steps that check for what is there (a fresh SQLite store took most of a one-event ``scan --db``
    run), then the migrations that do more than create tables."""
    from kubeguard.graph.schema import metadata as graph_metadata

    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        # Python's sqlite3 runs DDL outside any transaction, each statement a commit with its own fsync;
        # one explicit transaction makes the new store one commit (and all or nothing).
        conn.exec_driver_sql("BEGIN")
    schema.metadata.create_all(conn, checkfirst=False)
    graph_metadata.create_all(conn, checkfirst=False)
    for number, step in MIGRATIONS:
        if number not in _COVERED_BY_CREATE_ALL:
            step(conn)
    applied = now_ms()
    conn.execute(
        schema.schema_version.insert(), [{"version": number, "applied_at_ms": applied} for number, _ in MIGRATIONS]
    )
    return MIGRATIONS[-1][0]


def now_ms() -> int:
    return int(time.time() * 1000)
