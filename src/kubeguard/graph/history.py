"""``kubeguard scan --db URL``: keep what a scan saw in a store the console can open.

The scan's counted events go into the activity store and its findings into the finding store (filed under
the store's detector), so ``kubeguard serve --db URL`` afterwards shows profiles, graph and findings for the
scanned logs. Roll-ups are flushed every :data:`FLUSH_EVERY` events to bound memory; the last flush and the
findings commit together. A scan appends: scanning the same log into the same store twice counts it twice.
"""

from __future__ import annotations

from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.graph.recorder import ActivityRecorder, IpDescriber
from kubeguard.store.database import open_engine

FLUSH_EVERY = 100_000


class ScanHistory:
    def __init__(self, url: str, describe_ip: IpDescriber | None = None) -> None:
        self.engine = open_engine(url)
        self.activity = ActivityRecorder(describe_ip)

    def attach(self, pipeline: Any) -> None:
        pipeline.observers.append(self.observe)

    def observe(self, event: AuditEvent) -> None:
        activity = self.activity
        activity.observe(event)
        if activity.events >= FLUSH_EVERY:
            with self.engine.begin() as conn:
                activity.flush(conn)

    def finish(self, findings: list[dict[str, Any]]) -> None:
        """Store the findings and the remaining roll-ups in one transaction."""
        from kubeguard.api.guardduty.findings import stamp_detector
        from kubeguard.store import detectors
        from kubeguard.store.recorder import FindingRecorder

        with self.engine.begin() as conn:
            detector_id = detectors.ensure_default(conn)
            filed = [stamp_detector(finding, detector_id) for finding in findings]
            FindingRecorder(self.engine).store(conn, filed)
            self.activity.observe_findings(filed)
            self.activity.flush(conn)
        self.engine.dispose()
