"""Record finding occurrences: apply suppression rules, upsert by id, then publish what is visible.

Filters are applied in rank order and the first filter whose criterion matches decides: ARCHIVE archives
the finding (a suppression rule, GuardDuty's semantics) and keeps it from being published; NOOP leaves it
as it is. A finding the analyst archived by hand is not suppressed: later occurrences update and publish
it, as GuardDuty does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine

from kubeguard.findings.criteria import matches
from kubeguard.store import filters, findings
from kubeguard.store.findings import Upserted

#: Receives each stored finding that should be published (new or updated, not suppressed).
PublishHook = Callable[[dict[str, Any]], None]
#: Stages the visible findings for publishing inside the recording transaction (the sinks' outbox).
StageHook = Callable[[Connection, list[dict[str, Any]]], None]
#: Receives (finding type, outcome) for every occurrence: outcome is created, updated or suppressed.
OutcomeHook = Callable[[str, str], None]
#: Runs in the batch's transaction after its findings are stored; returns findings it created or changed
#: (the attack sequences of :mod:`kubeguard.correlate.stored`), which are published like the others.
CorrelateHook = Callable[[Connection, list[dict[str, Any]]], list[dict[str, Any]]]


def suppressing_filter(rules: list[filters.FilterRecord], finding: dict[str, Any]) -> str | None:
    """The name of the ARCHIVE filter that suppresses ``finding``, if the first matching filter is one."""
    for rule in rules:
        if matches(rule.criterion, finding):
            return rule.name if rule.action == "ARCHIVE" else None
    return None


class FindingRecorder:
    def __init__(
        self,
        engine: Engine,
        publish: PublishHook | None = None,
        on_outcome: OutcomeHook | None = None,
        correlate: CorrelateHook | None = None,
        stage: StageHook | None = None,
    ) -> None:
        self._engine = engine
        self._correlate = correlate
        self._publish = publish or (lambda _finding: None)
        self._on_outcome = on_outcome or (lambda _type, _outcome: None)
        self._stage = stage
        # SQLite allows one writer; serialising here avoids busy retries between the drainer and the API.
        self._lock = threading.Lock()

    def record(
        self, occurrences: Iterable[dict[str, Any]], *, also: Callable[[Connection], None] | None = None
    ) -> list[Upserted]:
        """Store ``occurrences`` in one transaction (with ``also``, e.g. marking a spool batch done)."""
        visible: list[dict[str, Any]] = []
        stored: list[Upserted] = []
        with self._lock, self._engine.begin() as conn:
            rules_by_detector: dict[str, list[filters.FilterRecord]] = {}
            for occurrence in occurrences:
                detector_id = (occurrence.get("service") or {}).get("detectorId", "")
                if detector_id not in rules_by_detector:
                    rules_by_detector[detector_id] = filters.in_rank_order(conn, detector_id)
                result = findings.upsert(conn, occurrence)
                suppressed = self._apply_suppression(conn, rules_by_detector[detector_id], result)
                outcome = "suppressed" if suppressed else "created" if result.created else "updated"
                self._on_outcome(result.finding["type"], outcome)
                stored.append(result)
                if not suppressed:
                    visible.append(result.finding)
            if self._correlate is not None and stored:
                visible.extend(self._correlate(conn, [result.finding for result in stored]))
            if self._stage is not None:
                self._stage(conn, visible)
            if also is not None:
                also(conn)
        for finding in visible:
            self._publish(finding)
        return stored

    @staticmethod
    def _apply_suppression(conn: Connection, rules: list[filters.FilterRecord], result: Upserted) -> bool:
        if not rules or suppressing_filter(rules, result.finding) is None:
            return False
        service = result.finding.setdefault("service", {})
        if not service.get("archived"):
            service["archived"] = True
            findings.save(conn, result.finding)
        return True
