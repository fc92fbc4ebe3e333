"""Record finding occurrences: apply suppression rules, upsert by id, then publish what is visible.

Filters are applied in rank order and the first filter whose criterion matches decides: ARCHIVE archives
the finding (a suppression rule, GuardDuty's semantics) and keeps it from being published; NOOP leaves it
as it is. A finding the analyst archived by hand is not suppressed: later occurrences update and publish
it, as GuardDuty does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from kubeguard.findings.aggregate import merge_finding
from kubeguard.findings.criteria import matches
from kubeguard.store import filters, findings
from kubeguard.store.findings import Upserted
from kubeguard.store.writer import writer_lock

#: Receives each stored finding that should be published (new or updated, not suppressed).
PublishHook = Callable[[dict[str, Any]], None]
#: Stages the visible findings for publishing inside the recording transaction (the sinks' outbox).
StageHook = Callable[[Connection, list[dict[str, Any]]], None]
#: Receives (finding type, outcome) for every occurrence: outcome is created, updated or suppressed.
OutcomeHook = Callable[[str, str], None]
#: Runs in the batch's transaction after its findings are stored; returns findings it created or changed
#: (the attack sequences of :mod:`kubeguard.correlate.stored`), which are published like the others.
CorrelateHook = Callable[[Connection, list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass(slots=True, frozen=True)
class Stored:
    result: Upserted
    suppressed: bool


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
        # SQLite allows one writer; serialising here avoids busy retries between the drainer, the API and
        # the webhook's spool appends (which share the engine's writer lock).
        self._lock = writer_lock(engine)

    @property
    def lock(self) -> threading.RLock:
        """Held by every writer of findings in this process (SQLite has one writer at a time)."""
        return self._lock

    def record(
        self, occurrences: Iterable[dict[str, Any]], *, also: Callable[[Connection], None] | None = None
    ) -> list[Upserted]:
        """Store ``occurrences`` in one transaction (with ``also``, e.g. marking a spool batch done)."""
        with self._lock, self._engine.begin() as conn:
            stored = self.store(conn, occurrences)
            if also is not None:
                also(conn)
        self.announce(stored)
        return [item.result for item in stored]

    def store(self, conn: Connection, occurrences: Iterable[dict[str, Any]]) -> list[Stored]:
        """Upsert ``occurrences`` inside the caller's transaction; :meth:`announce` them once it commits.

        One read (locking the rows on PostgreSQL) for all of them, then one insert and one update
        statement: a batch costs a few round trips however many findings it touches.
        """
        occurrences = list(occurrences)
        if not occurrences:
            return []
        current = findings.locked(conn, (occurrence["id"] for occurrence in occurrences))
        created: set[str] = set()
        rules_by_detector: dict[str, list[filters.FilterRecord]] = {}
        stored: list[Stored] = []
        for occurrence in occurrences:
            detector_id = (occurrence.get("service") or {}).get("detectorId", "")
            if detector_id not in rules_by_detector:
                rules_by_detector[detector_id] = filters.in_rank_order(conn, detector_id)
            existing = current.get(occurrence["id"])
            finding = occurrence if existing is None else merge_finding(existing, occurrence)
            if existing is None:
                created.add(finding["id"])
            suppressed = self._apply_suppression(rules_by_detector[detector_id], finding)
            current[finding["id"]] = finding
            stored.append(Stored(Upserted(finding, created=existing is None), suppressed))
        final = {item.result.finding["id"]: item.result.finding for item in stored}
        findings.write_many(
            conn,
            [finding for key, finding in final.items() if key in created],
            [finding for key, finding in final.items() if key not in created],
        )
        if self._correlate is not None:
            # Attack sequences read the findings just written; what they create or change is published too.
            for sequence in self._correlate(conn, list(final.values())):
                stored.append(Stored(Upserted(sequence, created=False), suppressed=False))
        if self._stage is not None:
            self._stage(conn, [item.result.finding for item in stored if not item.suppressed])
        return stored

    def announce(self, stored: Iterable[Stored]) -> None:
        """Count each outcome and publish what is visible: only after the transaction committed."""
        for item in stored:
            outcome = "suppressed" if item.suppressed else "created" if item.result.created else "updated"
            self._on_outcome(item.result.finding["type"], outcome)
        for item in stored:
            if not item.suppressed:
                self._publish(item.result.finding)

    @staticmethod
    def _apply_suppression(rules: list[filters.FilterRecord], finding: dict[str, Any]) -> bool:
        """Archive ``finding`` (before it is written) when a suppression rule matches it."""
        if not rules or suppressing_filter(rules, finding) is None:
            return False
        service = finding.setdefault("service", {})
        if not service.get("archived"):
            finding["service"] = {**service, "archived": True}
        return True
