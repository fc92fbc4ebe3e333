"""The SQLite WAL checkpoint, in a thread of its own, off both the webhook's and detection's path.

Left to SQLite, the commit that grew the WAL past its threshold copied the WAL into the database and
fsynced it: every fifth webhook commit or so, before the API server got its 200. Done by the drainer
between groups instead, the copy took 40-190 ms a time under load, time in which the drainer detected
nothing, and detection is what bounds the rate at which findings keep up. So the drainer only asks, after
each group, and this thread checkpoints (PASSIVE: it neither waits for nor blocks a writer); requests
that come while it runs are served by one more checkpoint. The WAL stays bounded without it
(:data:`kubeguard.store.database.WAL_AUTOCHECKPOINT_PAGES`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, checkpoint: Callable[[], object]) -> None:
        self._checkpoint = checkpoint
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal checkpoint", daemon=True)
        #: Checkpoints run, for the tests.
        self.runs = 0

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Ask for a checkpoint soon; returns at once."""
        self._wanted.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            try:
                self._checkpoint()
            except Exception as exc:  # a busy or failing store: SQLite's own bound still holds the WAL
                log.warning("WAL checkpoint failed: %s", type(exc).__name__)
            self.runs += 1
