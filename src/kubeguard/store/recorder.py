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

from kubeguard.findings.criteria import matches
from kubeguard.store import filters, findings
from kubeguard.store.findings import Upserted

#: Receives each stored finding that should be published (new or updated, not suppressed).
PublishHook = Callable[[dict[str, Any]], None]
#: Receives (finding type, outcome) for every occurrence: outcome is created, updated or suppressed.
OutcomeHook = Callable[[str, str], None]


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
    ) -> None:
        self._engine = engine
        self._publish = publish or (lambda _finding: None)
        self._on_outcome = on_outcome or (lambda _type, _outcome: None)
        # SQLite allows one writer; serialising here avoids busy retries between the drainer and the API.
        self._lock = threading.Lock()

    @property
    def lock(self) -> threading.Lock:
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
        """Upsert ``occurrences`` inside the caller's transaction; :meth:`announce` them once it commits."""
        stored: list[Stored] = []
        rules_by_detector: dict[str, list[filters.FilterRecord]] = {}
        for occurrence in occurrences:
            detector_id = (occurrence.get("service") or {}).get("detectorId", "")
            if detector_id not in rules_by_detector:
                rules_by_detector[detector_id] = filters.in_rank_order(conn, detector_id)
            result = findings.upsert(conn, occurrence)
            suppressed = self._apply_suppression(conn, rules_by_detector[detector_id], result)
            stored.append(Stored(result, suppressed))
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
    def _apply_suppression(conn: Connection, rules: list[filters.FilterRecord], result: Upserted) -> bool:
        if not rules or suppressing_filter(rules, result.finding) is None:
            return False
        service = result.finding.setdefault("service", {})
        if not service.get("archived"):
            service["archived"] = True
            findings.save(conn, result.finding)
        return True
