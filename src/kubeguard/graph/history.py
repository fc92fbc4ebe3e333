"""``kubeguard scan --db URL``: keep what a scan saw in a store the console can open.

The scan's counted events go into the activity store and its findings into the finding store (filed under
the store's detector), so ``kubeguard serve --db URL`` afterwards shows profiles, graph and findings for the
scanned logs. The recorder is the pipeline's observer itself (no wrapper per event). Between blocks of
:data:`CHECK_EVERY` events read, the roll-ups are flushed once more than :data:`MAX_PENDING` distinct rows
wait: memory is bounded by what the counters hold, not by how many events fed them, and a repetitive log
is written once. The last flush and the findings commit together. A scan appends: scanning the same log
into the same store twice counts it twice.

Nothing here imports the API: a scan that keeps history pays for the store, not for the web framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.graph.recorder import ActivityRecorder, IpDescriber
from kubeguard.store import detectors
from kubeguard.store.database import open_engine
from kubeguard.store.detectors import stamp_detector
from kubeguard.store.recorder import FindingRecorder

#: Events read between two looks at the recorder's size.
CHECK_EVERY = 10_000
#: Distinct roll-up rows (and facts) held before a flush; each costs well under a kilobyte.
MAX_PENDING = 50_000


class ScanHistory:
    def __init__(self, url: str, describe_ip: IpDescriber | None = None) -> None:
        self.engine = open_engine(url)
        self.activity = ActivityRecorder(describe_ip)

    def attach(self, pipeline: Any, events: Iterable[AuditEvent]) -> Iterator[AuditEvent]:
        """Observe ``pipeline``'s counted events; returns ``events`` for the scan to read instead, which flushes
        the roll-ups between blocks when they grew large (the check costs nothing per event)."""
        pipeline.observers.append(self.activity.observe)
        return chain.from_iterable(self._blocks(iter(events)))

    def _blocks(self, events: Iterator[AuditEvent]) -> Iterator[Iterable[AuditEvent]]:
        for first in events:
            yield chain((first,), islice(events, CHECK_EVERY - 1))
            # The scan has processed the whole block when it asks for the next one.
            if self.activity.pending >= MAX_PENDING:
                with self.engine.begin() as conn:
                    self.activity.flush(conn)

    def finish(self, findings: list[dict[str, Any]]) -> None:
        """Store the findings and the remaining roll-ups in one transaction."""
        with self.engine.begin() as conn:
            detector_id = detectors.ensure_default(conn)
            filed = [stamp_detector(finding, detector_id) for finding in findings]
            FindingRecorder(self.engine).store(conn, filed)
            self.activity.observe_findings(filed)
            self.activity.flush(conn)
        self.engine.dispose()
