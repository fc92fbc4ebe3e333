"""One pipeline for every mode: counted stages → de-duplication → detectors → findings.

Only ``ResponseComplete`` counts, plus ``ResponseStarted`` for exec, attach and port-forward, whose action
starts there and which may never log a completion; events with no stage (hand-made, some v1beta1) count
as complete. Exec and friends are de-duplicated across their two stages, so one exec is one occurrence;
the stage that shows the connection established (101) is never hidden behind one that does not, so an exec
counts at whichever stage the API server logged the upgrade.

``kubeguard scan`` runs it over files, ``kubeguard serve`` behind the webhook spool, and each
``kubeguard worker`` over a NATS stream; all of them see the same findings for the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubeguard.audit.event import CONNECT_SUBRESOURCES, AuditEvent
from kubeguard.batch.window import EventWindow
from kubeguard.config import Settings
from kubeguard.detectors.anomaly.baselines import Baselines
from kubeguard.detectors.base import DetectionContext, Detector, StateStore
from kubeguard.detectors.effect import SWITCHING_PROTOCOLS
from kubeguard.detectors.engine import Engine
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.rules import later_stage_detections, user_rule_detectors
from kubeguard.findings.aggregate import merge_finding
from kubeguard.findings.builder import FindingBuilder, IpDescriber, address_only, iso_millis

#: How many keys a :class:`RecentKeys` remembers; older keys age out in two generations.
DEDUP_WINDOW = 200_000


class RecentKeys:
    """A bounded "seen recently" set: two generations, the older dropped when the newer fills up.

    The pipeline's own de-duplication is :class:`kubeguard.batch.window.EventWindow` (kept in the store by
    the service); this smaller tool serves detectors that remember recent keys of their own (Sigma rules'
    connect matches).
    """

    def __init__(self, capacity: int = DEDUP_WINDOW) -> None:
        self.capacity = capacity
        self._current: set[Any] = set()
        self._previous: set[Any] = set()

    def __contains__(self, key: Any) -> bool:
        return key in self._current or key in self._previous

    def add(self, key: Any) -> bool:
        """Remember ``key``; True if it was not seen within the window."""
        if key in self._current or key in self._previous:
            return False
        if len(self._current) >= self.capacity:
            self._previous, self._current = self._current, set()
        self._current.add(key)
        return True


log = logging.getLogger(__name__)

@dataclass(slots=True)
class PipelineStats:
    events: int = 0
    counted: int = 0
    duplicates: int = 0
    other_stages: int = 0
    detections: int = 0
    #: Events that could not be judged (an unreadable timestamp, say): counted, skipped, the rest go on.
    rejected: int = 0


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
        window: EventWindow | None = None,
    ) -> None:
        self.settings = settings
        if baselines is None and settings.anomaly.enabled:
            baselines = Baselines.from_settings(settings.anomaly)
            baselines.load(state)
        self.baselines = baselines
        context = DetectionContext(state=state, intel=intel, baselines=baselines)
        if detectors is None:
            detectors = [*default_detectors(settings.detectors.packs), *user_rule_detectors(settings.rules)]
        self.engine = Engine(detectors, context)
        self.later_stage_detectors = [d for d in detectors if hasattr(d, "detect_later_stage")]
        self.builder = FindingBuilder(settings, describe_ip)
        #: The de-duplication window; the service passes one kept in its store (``kubeguard.batch``).
        self.recent = window if window is not None else EventWindow()
        self.stats = PipelineStats()
        #: Called with every counted event (the activity store's recorder); empty unless history is kept.
        self.observers: list[Callable[[AuditEvent], None]] = []

    def process_event(self, event: AuditEvent) -> list[dict[str, Any]]:
        """Findings (one per detection, not yet aggregated) for one event; the hot path of every mode.

        Written for speed (every event of every mode passes here): fields are read once into locals and
        the common timestamp shape is checked inline before :func:`readable_time` is asked.
        """
        stats = self.stats
        stats.events += 1
        stage = event.stage
        ref = event.objectRef
        connect = ref is not None and ref.subresource in CONNECT_SUBRESOURCES
        if stage != "ResponseComplete" and stage and not (connect and stage == "ResponseStarted"):
            stats.other_stages += 1
            return []
        stamp = event.stageTimestamp or event.requestReceivedTimestamp or event.timestamp
        if not (
            len(stamp) >= 24 and stamp[19] == "." and stamp[-1] == "Z" and stamp[4] == "-" and stamp[10] == "T"
            and stamp[:4].isdigit()
        ) and not readable_time(stamp):
            stats.rejected += 1
            log.warning("audit event %s skipped: unreadable timestamp %r", event.auditID, stamp[:64])
            return []
        # A connection is one occurrence across its stages, but the stage showing it established (101)
        # is never hidden behind one that does not.
        kind = ("connect:101" if event.status_code == SWITCHING_PROTOCOLS else "connect") if connect else stage
        if event.auditID and not self.recent.first(event.cluster, event.auditID, kind):
            stats.duplicates += 1
            if connect and self.later_stage_detectors:  # a rule may name the stage it wants (Sigma rules)
                return [self.builder.build(d) for d in later_stage_detections(self.later_stage_detectors, event)]
            return []
        stats.counted += 1
        detections = self.engine.detect(event)
        # After the detectors: the strings they hashed and the body they decoded are there for the observer.
        if self.observers:
            for observe in self.observers:
                observe(event)
        if not detections:
            return []
        stats.detections += len(detections)
        try:
            return [self.builder.build(d) for d in detections]
        except Exception:  # noqa: BLE001 - one unreadable event is a counted reject, not a failed batch
            stats.rejected += 1
            log.exception("audit event %s skipped: its finding could not be built", event.auditID)
            return []

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


def readable_time(stamp: str) -> bool:
    """True when findings can be stamped with ``stamp`` (empty counts: the builder uses the current time)."""
    if len(stamp) >= 24 and stamp[19] == "." and stamp.endswith("Z"):
        return stamp[4] == "-" and stamp[10] == "T" and stamp[:4].isdigit()
    try:
        iso_millis(stamp)
    except (ValueError, TypeError):
        return False
    return True


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
