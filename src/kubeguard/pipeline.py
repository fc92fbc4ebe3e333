"""One pipeline for every mode: counted stages → de-duplication → detectors → findings.

Only ``ResponseComplete`` counts, plus ``ResponseStarted`` for exec, attach and port-forward, whose action
starts there and which may never log a completion; events with no stage (hand-made, some v1beta1) count
as complete. Exec and friends are de-duplicated across their two stages, so one exec is one occurrence.

``kubeguard scan`` runs it over files, ``kubeguard serve`` behind the webhook spool, and each
``kubeguard worker`` over a NATS stream; all of them see the same findings for the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubeguard.audit.event import CONNECT_SUBRESOURCES, AuditEvent
from kubeguard.config import Settings
from kubeguard.detectors.anomaly.baselines import Baselines
from kubeguard.detectors.base import DetectionContext, Detector, StateStore
from kubeguard.detectors.engine import Engine
from kubeguard.detectors.registry import default_detectors
from kubeguard.findings.aggregate import merge_finding
from kubeguard.findings.builder import FindingBuilder, IpDescriber, address_only

#: How many (auditID, stage) keys the de-duplicator remembers; older keys age out in two generations.
DEDUP_WINDOW = 200_000


class RecentKeys:
    """A bounded "seen recently" set: two generations, the older dropped when the newer fills up.

    Duplicates in audit logs come from retries and overlapping exports, close together in time, so a
    window of recent keys catches them without growing for ever.
    """

    def __init__(self, capacity: int = DEDUP_WINDOW) -> None:
        self.capacity = capacity
        self._current: set[Any] = set()
        self._previous: set[Any] = set()

    def add(self, key: Any) -> bool:
        """Remember ``key``; True if it was not seen within the window."""
        if key in self._current or key in self._previous:
            return False
        if len(self._current) >= self.capacity:
            self._previous, self._current = self._current, set()
        self._current.add(key)
        return True


@dataclass(slots=True)
class PipelineStats:
    events: int = 0
    counted: int = 0
    duplicates: int = 0
    other_stages: int = 0
    detections: int = 0


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        state: StateStore,
        *,
        detectors: Sequence[Detector] | None = None,
        intel: Any = None,
        baselines: Any = None,
        describe_ip: IpDescriber = address_only,
    ) -> None:
        self.settings = settings
        if baselines is None and settings.anomaly.enabled:
            baselines = Baselines.from_settings(settings.anomaly)
            baselines.load(state)
        self.baselines = baselines
        context = DetectionContext(state=state, intel=intel, baselines=baselines)
        self.engine = Engine(default_detectors() if detectors is None else detectors, context)
        self.builder = FindingBuilder(settings, describe_ip)
        self.recent = RecentKeys()
        self.stats = PipelineStats()
        #: Called with every counted event (the activity store's recorder); empty unless history is kept.
        self.observers: list[Callable[[AuditEvent], None]] = []

    def process_event(self, event: AuditEvent) -> list[dict[str, Any]]:
        """Findings (one per detection, not yet aggregated) for one event; the hot path of every mode."""
        stats = self.stats
        stats.events += 1
        stage = event.stage
        ref = event.objectRef
        connect = ref is not None and ref.subresource in CONNECT_SUBRESOURCES
        if stage != "ResponseComplete" and not (connect and stage == "ResponseStarted") and stage:
            stats.other_stages += 1
            return []
        if event.auditID and not self.recent.add((event.auditID, "connect" if connect else stage)):
            stats.duplicates += 1
            return []
        stats.counted += 1
        for observe in self.observers:
            observe(event)
        detections = self.engine.detect(event)
        if not detections:
            return []
        stats.detections += len(detections)
        return [self.builder.build(d) for d in detections]

    def set_intel(self, intel: Any) -> None:
        """Swap the threat intelligence detectors read (an API call activated or removed a list)."""
        self.engine.context.intel = intel

    def save_state(self) -> None:
        """Write what detectors hold in memory (the anomaly baselines) into the state store."""
        if isinstance(self.baselines, Baselines):
            self.baselines.save(self.engine.context.state)

    def process(self, events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
        findings: list[dict[str, Any]] = []
        for event in events:
            findings.extend(self.process_event(event))
        return findings


class FindingSet:
    """Findings aggregated in memory by id, in first-seen order (what ``scan`` prints)."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}

    def add(self, finding: dict[str, Any]) -> None:
        existing = self.by_id.get(finding["id"])
        self.by_id[finding["id"]] = finding if existing is None else merge_finding(existing, finding)

    def __len__(self) -> int:
        return len(self.by_id)

    def values(self) -> list[dict[str, Any]]:
        return list(self.by_id.values())
