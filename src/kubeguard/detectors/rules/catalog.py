"""Every rule a running kubeguard evaluates, described the way GuardDuty's Custom Detection Rules API does.

Built-in rules are the finding types of the built-in detectors; user rules are the loaded Sigma rules.
Each has an API id (``[a-z0-9]+(-[a-z0-9]+)*``), a name (the finding type for built-ins, the Sigma title
for user rules), a severity word, a tactic and technique, and a definition.

Associations set a rule's mode: ``LIVE`` raises findings, ``DRY_RUN`` only counts matches. A rule with no
association runs as configured (built-ins LIVE, Sigma rules ``[rules] default_mode``). Sigma rules apply
their mode inside :class:`~.detector.SigmaRules` (a dry-run rule never builds a finding); built-in rules
in :meth:`RuleCatalog.admit`, on the service's way from the pipeline to the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubeguard.detectors.rules import naming
from kubeguard.detectors.rules.detector import DRY_RUN, LIVE, SigmaRules
from kubeguard.findings.types import CATALOGUE

#: GuardDuty's DataSource enum has no audit-log member; this is the value kubeguard reports.
DATA_SOURCE = "EKS_AUDIT_LOGS"
SERVICE = "Kubernetes"
SIGMA_LANGUAGE = "SIGMA"
SIGMA_SCHEMA = "KUBERNETES_AUDIT"


@dataclass(slots=True)
class RuleEntry:
    rule_id: str
    name: str
    description: str
    severity: str
    tactic: str
    technique: str
    expression: str
    created_at: datetime
    finding_type: str
    built_in: bool
    language: str = ""
    schema: str = ""

    def summary(self, arn: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ruleId": self.rule_id,
            "arn": arn,
            "name": self.name,
            "description": self.description,
            "severity": self.severity,
            "dataSource": DATA_SOURCE,
            "tactic": self.tactic,
            "technique": self.technique,
            "service": SERVICE,
            "createdAt": self.created_at.timestamp(),
        }
        if self.language:
            body["language"] = self.language
            body["schema"] = self.schema
        return body

    def detail(self, arn: str) -> dict[str, Any]:
        return {**self.summary(arn), "definition": {"expression": self.expression}}

    def field(self, name: str) -> str:
        """The value ListCustomDetectionRules filters compare (``name``, ``severity``, ...)."""
        return {
            "name": self.name,
            "description": self.description,
            "dataSource": DATA_SOURCE,
            "severity": self.severity,
            "tactic": self.tactic,
            "technique": self.technique,
            "service": SERVICE,
        }[name]


class RuleCatalog:
    """Built-in and user rules, their modes (from associations) and what each matched since start."""

    def __init__(self, built_in_types: Iterable[str], sigma: SigmaRules | None, *, started: datetime | None = None):
        started = started or datetime.now(UTC)
        self.sigma = sigma
        self.entries: dict[str, RuleEntry] = {}
        for type_name in dict.fromkeys(built_in_types):
            known = CATALOGUE.get(type_name)
            tactic, _, rest = type_name.partition(":")
            entry = RuleEntry(
                rule_id=naming.rule_id(type_name),
                name=type_name,
                description=(known.title if known else type_name),
                severity=naming.severity_word(known.severity if known else 5.0),
                tactic=tactic,
                technique=rest.partition("/")[2],
                expression=f"kubeguard built-in detection of {type_name}",
                created_at=started,
                finding_type=type_name,
                built_in=True,
            )
            self.entries[entry.rule_id] = entry
        self._built_in_by_type = {e.finding_type: e.rule_id for e in self.entries.values()}
        for rule in sigma.rules if sigma is not None else ():
            self.entries[rule.rule_id] = RuleEntry(
                rule_id=rule.rule_id,
                name=rule.title,
                description=rule.description[:1024],
                severity=naming.severity_word(rule.severity),
                tactic=rule.tactic,
                technique=rule.technique or rule.finding_type.partition("/")[2],
                expression=rule.text,
                created_at=rule.created_at,
                finding_type=rule.finding_type,
                built_in=False,
                language=SIGMA_LANGUAGE,
                schema=SIGMA_SCHEMA,
            )
        #: Modes of the built-in rules that have an association (Sigma rules keep theirs in the detector).
        self.built_in_modes: dict[str, str] = {}
        self.built_in_matches: Counter[str] = Counter()
        self.built_in_dry_run: Counter[str] = Counter()

    @classmethod
    def from_detectors(cls, detectors: Iterable[Any]) -> RuleCatalog:
        """The catalogue of an engine's detectors: built-in types, plus the Sigma detector's rules."""
        detectors = list(detectors)
        sigma = next((d for d in detectors if isinstance(d, SigmaRules)), None)
        built_in = [t for d in detectors if not isinstance(d, SigmaRules) for t in d.finding_types]
        return cls(built_in, sigma)

    def get(self, rule_id: str) -> RuleEntry | None:
        return self.entries.get(rule_id)

    def set_mode(self, rule_id: str, mode: str | None) -> None:
        """Apply an association's mode (None: the association was removed, back to the default)."""
        entry = self.entries[rule_id]
        modes = self.built_in_modes if entry.built_in else (self.sigma.modes if self.sigma is not None else {})
        if mode is None:
            modes.pop(rule_id, None)
        else:
            modes[rule_id] = mode

    def mode(self, rule_id: str) -> str:
        entry = self.entries[rule_id]
        if entry.built_in:
            return self.built_in_modes.get(rule_id, LIVE)
        return self.sigma.mode(rule_id) if self.sigma is not None else LIVE

    def match_counts(self, rule_id: str) -> dict[str, int]:
        """Matches since the service started: raised as findings, and counted in dry run."""
        entry = self.entries[rule_id]
        if entry.built_in:
            return {"live": self.built_in_matches[rule_id], "dryRun": self.built_in_dry_run[rule_id]}
        sigma = self.sigma
        return {"live": sigma.matches[rule_id], "dryRun": sigma.dry_run_matches[rule_id]} if sigma else {}

    def admit(self, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The findings to keep: those of built-in rules in dry run are counted and dropped."""
        kept = []
        for finding in findings:
            rule_id = self._built_in_by_type.get(finding["type"])
            if rule_id is not None and "customDetectionRuleName" not in finding:
                if self.built_in_modes.get(rule_id) == DRY_RUN:
                    self.built_in_dry_run[rule_id] += 1
                    continue
                self.built_in_matches[rule_id] += 1
            kept.append(finding)
        return kept
