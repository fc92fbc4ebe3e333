"""The finding store: SQLAlchemy Core tables on SQLite (default) or PostgreSQL."""

from kubeguard.store.database import default_url, migrate, open_engine, url_from_option
from kubeguard.store.spool import Spool
from kubeguard.store.state import SqlState

__all__ = ["Spool", "SqlState", "default_url", "migrate", "open_engine", "url_from_option"]
