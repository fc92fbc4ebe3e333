"""``kubeguard rules test``: what a rule matches in a log, event by event, before it goes live.

The log runs through the same pipeline as ``scan`` (the same stage filter and de-duplication), with
only the rules under test as detectors, so what is listed here is exactly what ``scan --rules`` would
count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from kubeguard.audit.decode import EventReader
from kubeguard.audit.event import AuditEvent
from kubeguard.config import AnomalySettings, Settings
from kubeguard.detectors.base import DetectionContext
from kubeguard.detectors.rules.detector import SigmaRules
from kubeguard.detectors.rules.load import Rule, load_rules
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline


@dataclass(slots=True)
class Match:
    rule: Rule
    event: AuditEvent

    def summary(self) -> dict[str, Any]:
        event = self.event
        return {
            "rule": self.rule.title,
            "ruleId": self.rule.rule_id,
            "auditID": event.auditID,
            "time": event.event_time,
            "user": event.user.username,
            "verb": event.verb,
            "resource": "/".join(p for p in (event.resource, event.subresource) if p),
            "namespace": event.namespace,
            "name": event.name,
            "code": event.status_code,
            "requestURI": event.requestURI,
        }


@dataclass(slots=True)
class TrialResult:
    rules: list[Rule]
    matches: list[Match] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    counted: int = 0
    rejected: int = 0


class _Recorder(SigmaRules):
    """The rules detector, also keeping each matching event for the report."""

    def __init__(self, rules: Sequence[Rule], sink: list[Match]) -> None:
        super().__init__(rules)
        self.sink = sink

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> list:  # type: ignore[override]
        found = super().detect(event, ctx)
        for detection in found:
            self.sink.append(Match(self.by_id[detection.additional_info["customDetectionRuleId"]], event))
        return found


def trial(rule_paths: Sequence[str | Path], logs: Sequence[str], *, settings: Settings | None = None,
          cluster: str | None = None) -> TrialResult:
    """Run the rules under ``rule_paths`` over ``logs``; raises RuleLoadError for a bad rule."""
    rules = load_rules(rule_paths)
    result = TrialResult(rules=rules)
    settings = msgspec.structs.replace(settings or Settings(), anomaly=AnomalySettings(enabled=False))
    detector = _Recorder(rules, result.matches)
    pipeline = Pipeline(settings, MemoryState(), detectors=[detector])
    findings = FindingSet()
    reader = EventReader(cluster=cluster)
    for event in reader.read_paths(logs):
        for finding in pipeline.process_event(event):
            findings.add(finding)
    result.findings = findings.values()
    result.events = pipeline.stats.events
    result.counted = pipeline.stats.counted
    result.rejected = reader.rejects.count
    return result
