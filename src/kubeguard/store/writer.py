"""One writer at a time on SQLite, queued in the process instead of polled by SQLite's busy handler.

SQLite lets one connection write at a time. A writer that finds the lock taken sleeps in SQLite's busy
handler and looks again after 1, 2, 5, 10 ... up to 100 ms: a webhook append that arrived while the drainer
wrote a detection group (its findings, state and activity; appends waited up to 470 ms for it under load)
could sleep up to 100 ms past the moment the lock came free, and the API server's 200 waited with it.
Writers of one process that take this lock first wait in a queue instead and start the moment the previous
transaction has committed. It is held from before a transaction's first write until after its commit; other processes
on the same file still meet SQLite's own lock and busy timeout, as before.

Re-entrant, because the drainer holds it while its transaction calls helpers that write.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine

_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def writer_lock(engine: Engine) -> threading.RLock:
    """The lock every in-process writer of ``engine`` shares (one per engine, whatever its dialect)."""
    with _guard:
        lock = _locks.get(engine)
        if lock is None:
            lock = _locks[engine] = threading.RLock()
        return lock
