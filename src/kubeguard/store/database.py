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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text

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
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    migrate(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _create_initial_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _add_blobs(conn: Connection) -> None:
    """Version 2: named blobs for detector state that is one document (the anomaly baselines)."""
    schema.blobs.create(conn, checkfirst=True)


def _add_batch_state(conn: Connection) -> None:
    """Version 3: batch done marks, per-cluster versions, anomaly profiles per row, the de-duplication window,
    and each spool body's size (the backlog is bounded in bytes as well as events)."""
    for table in (schema.batches, schema.clusters, schema.profiles, schema.event_keys):
        table.create(conn, checkfirst=True)
    columns = {column["name"] for column in inspect(conn).get_columns("kg_spool")}
    if "body_bytes" not in columns:
        conn.execute(text("ALTER TABLE kg_spool ADD COLUMN body_bytes BIGINT NOT NULL DEFAULT 0"))
        conn.execute(text("UPDATE kg_spool SET body_bytes = length(body)"))
    from kubeguard.batch.state import import_legacy_baselines  # the batch layer builds on the store

    import_legacy_baselines(conn)


def _add_bus_failures(conn: Connection) -> None:
    """Version 4: attempts and dead letters of NATS JetStream batches (``kubeguard worker``)."""
    schema.batch_failures.create(conn, checkfirst=True)


#: (version, migration). Append only; never edit an entry that has shipped.
MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (1, _create_initial_tables),
    (2, _add_blobs),
    (3, _add_batch_state),
    (4, _add_bus_failures),
)


def current_version(conn: Connection) -> int:
    versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
    return max(versions, default=0)


def migrate(engine: Engine) -> int:
    """Apply every migration newer than the store's version; returns the resulting version."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        for number, step in MIGRATIONS:
            if number > version:
                step(conn)
                conn.execute(schema.schema_version.insert().values(version=number, applied_at_ms=now_ms()))
                version = number
        return version


def now_ms() -> int:
    return int(time.time() * 1000)
