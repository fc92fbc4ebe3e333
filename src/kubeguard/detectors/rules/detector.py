"""The detector that runs the user's Sigma rules in the pipeline, like any built-in detector.

Rules are indexed by the verbs and resources their conditions require (:func:`.compile.dispatch`), so
an event is offered only to the rules that could match it; the engine still sends this detector every
event, because Sigma rules may match on anything. A match becomes a :class:`Detection` of the rule's
own type keyed by the rule's id: a rule's finding aggregates per (cluster, rule, principal), so its
``service.count`` is the number of matching events.

Each rule has a mode, GuardDuty's association modes: ``LIVE`` raises findings, ``DRY_RUN`` only counts
what would have matched, so a team can trial a rule before it pages anyone. The counts are kept per
rule for the rules API and ``/metrics``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import orjson

from kubeguard.audit.event import CONNECT_SUBRESOURCES, AuditEvent
from kubeguard.detectors.base import ANY, Detection, DetectionContext
from kubeguard.detectors.effect import EVERY_OUTCOME, Outcome
from kubeguard.detectors.rules.fields import EventView, accessor
from kubeguard.detectors.rules.gates import GateGroup
from kubeguard.detectors.rules.load import Rule
from kubeguard.pipeline import RecentKeys

LIVE = "LIVE"
DRY_RUN = "DRY_RUN"
MODES = (LIVE, DRY_RUN)

_Key = tuple[str, str]


class _Route(NamedTuple):
    ungated: tuple[int, ...]
    groups: tuple[GateGroup, ...]

#: Bounds on what a finding's ``parameters`` repeats of the matched event.
MAX_PARAMETER_VALUES = 20
MAX_PARAMETER_TEXT = 512


class SigmaRules:
    """Every loaded Sigma rule behind one detector; see the module docstring."""

    name: ClassVar[str] = "sigma-rules"
    wants: ClassVar[tuple[tuple[str, str], ...]] = ((ANY, ANY),)
    #: A rule says itself what outcome it is about (``responseStatus.code``, ``requestURI``): it sees dry
    #: runs and failed requests too, so a rule for denied requests works and every rule matches what it says.
    outcomes: ClassVar[frozenset[Outcome]] = EVERY_OUTCOME

    def __init__(self, rules: Sequence[Rule], *, default_mode: str = LIVE) -> None:
        if default_mode not in MODES:
            raise ValueError(f"rule mode must be LIVE or DRY_RUN, not {default_mode!r}")
        self.rules = list(rules)
        self.by_id = {rule.rule_id: rule for rule in self.rules}
        self.finding_types = tuple(dict.fromkeys(rule.finding_type for rule in self.rules))
        self.default_mode = default_mode
        #: Modes set through the API (associations); rules without one run in ``default_mode``.
        self.modes: dict[str, str] = {}
        self.matches: Counter[str] = Counter()
        self.dry_run_matches: Counter[str] = Counter()
        self._index = _build_index(self.rules)
        self._routes: dict[_Key, _Route] = {}
        self._parameters = {rule.rule_id: _parameter_readers(rule) for rule in self.rules}
        #: (rule, auditID) of connect requests a rule matched: each counts once across its two stages.
        self._connect_matches = RecentKeys()

    def mode(self, rule_id: str) -> str:
        return self.modes.get(rule_id, self.default_mode)

    def candidates(self, verb: str, resource: str) -> tuple[Rule, ...]:
        """The rules that could match ``verb`` on ``resource``, in load order."""
        route = self._route(verb, resource)
        positions = sorted({*route.ungated, *(p for group in route.groups for p, _ in group.members)})
        return tuple(self.rules[p] for p in positions)

    def _route(self, verb: str, resource: str) -> _Route:
        """The rules for ``verb`` on ``resource``: ungated ones, and gate groups by field (cached per pair)."""
        key = (verb, resource)
        found = self._routes.get(key)
        if found is None:
            index = self._index
            verb_l, resource_l = verb.lower(), resource.lower()
            wanted = {
                id(rule)
                for pair in ((verb_l, resource_l), (verb_l, None), (None, resource_l), (None, None))
                for rule in index.get(pair, ())
            }
            ungated: list[int] = []
            by_field: dict[str, list[tuple[int, Any]]] = {}
            for position, rule in enumerate(self.rules):
                if id(rule) not in wanted:
                    continue
                if rule.gate is None:
                    ungated.append(position)
                else:
                    by_field.setdefault(rule.gate.field, []).append((position, rule.gate.test))
            groups = tuple(
                GateGroup(self.rules[members[0][0]].gate.read, members)  # type: ignore[union-attr]
                for members in by_field.values()
            )
            found = self._routes[key] = _Route(tuple(ungated), groups)
        return found

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> list[Detection]:
        return self._detect(event, later_stage=False)

    def detect_later_stage(self, event: AuditEvent) -> list[Detection]:
        """The second logged stage of an exec, attach or port-forward the pipeline already counted."""
        return self._detect(event, later_stage=True)

    def _detect(self, event: AuditEvent, *, later_stage: bool) -> list[Detection]:
        ref = event.objectRef
        route = self._routes.get((event.verb, ref.resource if ref is not None else ""))
        if route is None:
            route = self._route(event.verb, ref.resource if ref is not None else "")
        positions = route.ungated
        for group in route.groups:
            passing = group.passing(event)
            if passing:
                positions = tuple(sorted((*positions, *passing)))
        if not positions:
            return []
        rules = [self.rules[p] for p in positions]
        connect = ref is not None and ref.subresource in CONNECT_SUBRESOURCES and bool(event.auditID)
        view = EventView(event)
        found: list[Detection] = []
        for rule in rules:
            if connect and later_stage and (rule.rule_id, event.auditID) in self._connect_matches:
                continue  # this rule already counted the request at its first stage
            if not rule.matcher(view):
                continue
            if connect and not self._connect_matches.add((rule.rule_id, event.auditID)):
                continue
            if self.modes.get(rule.rule_id, self.default_mode) == DRY_RUN:
                self.dry_run_matches[rule.rule_id] += 1
                continue
            self.matches[rule.rule_id] += 1
            found.append(self.detection(rule, event, view))
        return found

    def detection(self, rule: Rule, event: AuditEvent, view: EventView) -> Detection:
        matched = {}
        for field, read in self._parameters[rule.rule_id]:
            values = [_compact(value) for value in read(view)[:MAX_PARAMETER_VALUES]]
            if values:
                matched[field] = values[0] if len(values) == 1 else values
        info = {
            "customDetectionRuleName": rule.title,
            "customDetectionRuleId": rule.rule_id,
            "ruleLanguage": "SIGMA",
            "ruleSource": rule.source,
            "kubeguardExtension": True,
        }
        if rule.technique:
            info["mitreTechnique"] = rule.technique
        return Detection(
            finding_type=rule.finding_type,
            severity=rule.severity,
            event=event,
            key=rule.rule_id,
            title=rule.title,
            description=rule.description,
            parameters=orjson.dumps(matched, default=str).decode() if matched else "",
            additional_info=info,
            custom_rule_name=rule.title,
        )


def _compact(value: object) -> object:
    """A field value as ``parameters`` shows it: scalars as they are, long text cut, objects named only."""
    if isinstance(value, str) and len(value) > MAX_PARAMETER_TEXT:
        return value[:MAX_PARAMETER_TEXT] + "…"
    if isinstance(value, dict | list):
        return f"<{type(value).__name__}>"
    return value


def _build_index(rules: Sequence[Rule]) -> dict[tuple[str | None, str | None], list[Rule]]:
    index: dict[tuple[str | None, str | None], list[Rule]] = {}
    for rule in rules:
        verbs = rule.verbs if rule.verbs is not None else (None,)
        resources = rule.resources if rule.resources is not None else (None,)
        for verb in verbs:
            for resource in resources:
                index.setdefault((verb, resource), []).append(rule)
    return index


def _parameter_readers(rule: Rule) -> list[tuple[str, object]]:
    """The fields a rule names, read back from a matching event for the finding's ``parameters``."""
    return [(field, accessor(field)) for field in rule.fields]
