"""Reading Sigma rules from files and directories into compiled :class:`Rule` objects.

pySigma parses each YAML document (rules, multi-document collections with ``action: global``) and
resolves its condition; this module checks the rule is for ``product: kubernetes, service: audit``,
compiles it (:mod:`.compile`) and reads its metadata (:mod:`.naming`). Anything wrong with a rule stops
loading with a :class:`RuleLoadError` whose one-line message names the file and the reason: a rule that
silently fails to load is a detection that silently does not exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from kubeguard.detectors.rules import RuleLoadError, naming
from kubeguard.detectors.rules.compile import Matcher, compile_condition, dispatch
from kubeguard.detectors.rules.fields import FieldError
from kubeguard.detectors.rules.gates import Gate, gate_of
from kubeguard.detectors.rules.values import UnsupportedValue

RULE_SUFFIXES = (".yml", ".yaml")
MAX_RULE_BYTES = 1 << 20


@dataclass(slots=True)
class Rule:
    """One compiled Sigma rule and everything its findings and the rules API say about it."""

    rule_id: str
    title: str
    description: str
    level: str
    severity: float
    tactic: str
    technique: str
    finding_type: str
    source: str
    text: str
    matcher: Matcher
    verbs: frozenset[str] | None
    resources: frozenset[str] | None
    fields: tuple[str, ...]
    #: A necessary single-field test the detector answers for many rules at once (see ``gates``).
    gate: Gate | None = None
    sigma_id: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    author: str = ""
    tags: tuple[str, ...] = ()

    def matches(self, view: Any) -> bool:
        return self.matcher(view)


def rule_files(path: Path) -> list[Path]:
    """A file as given; a directory's ``*.yml``/``*.yaml`` files, recursively, in name order."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file())
    if path.is_file():
        return [path]
    raise RuleLoadError(path, "no such file or directory")


def load_rules(paths: Iterable[str | Path]) -> list[Rule]:
    """Every rule under ``paths``; raises :class:`RuleLoadError` on the first one that cannot be used."""
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in paths:
        for file in rule_files(Path(path)):
            for rule in load_file(file):
                if rule.rule_id in seen:
                    raise RuleLoadError(file, f"rule id {rule.rule_id!r} is also used by {seen[rule.rule_id]}")
                seen[rule.rule_id] = str(file)
                rules.append(rule)
    return rules


def load_file(path: Path) -> list[Rule]:
    try:
        if path.stat().st_size > MAX_RULE_BYTES:
            raise RuleLoadError(path, f"larger than {MAX_RULE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuleLoadError(path, f"cannot read: {error}") from error
    rules = list(parse_rules(text, path))
    if not rules:
        raise RuleLoadError(path, "no Sigma rule in the file")
    return rules


def parse_rules(text: str, path: Path | str = "<rule>") -> Iterator[Rule]:
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RuleLoadError(path, f"not valid YAML{where}: {problem}") from error
    except (SigmaError, ValueError) as error:
        raise RuleLoadError(path, _sigma_reason(error)) from error
    except (TypeError, AttributeError) as error:  # pySigma meets a document that is not a mapping
        reason = f"not a Sigma rule (a YAML mapping with title, logsource, detection): {error}"
        raise RuleLoadError(path, reason) from error
    for item in collection:
        if not isinstance(item, SigmaRule):
            raise RuleLoadError(path, f"{type(item).__name__} is not supported; only detection rules are")
        if item.errors:
            raise RuleLoadError(path, _sigma_reason(item.errors[0]))
        yield compile_rule(item, text, path)


def _sigma_reason(error: BaseException) -> str:
    message = str(error)
    return message.split(" in file ")[0] if message else type(error).__name__


def compile_rule(rule: SigmaRule, text: str, path: Path | str) -> Rule:
    title = rule.title or ""
    where = f"{path} ({title})" if title else path
    if not title:
        raise RuleLoadError(path, "the rule has no title")
    logsource = rule.logsource
    if (logsource.product or "").lower() != "kubernetes" or (logsource.service or "").lower() != "audit":
        raise RuleLoadError(
            where,
            f"logsource is product={logsource.product}, service={logsource.service}; "
            "kubeguard evaluates product: kubernetes, service: audit",
        )
    try:
        conditions = [condition.parsed for condition in rule.detection.parsed_condition]
        matchers = [compile_condition(tree) for tree in conditions]
    except (SigmaError, FieldError, UnsupportedValue) as error:
        raise RuleLoadError(where, _sigma_reason(error)) from error
    matcher = matchers[0] if len(matchers) == 1 else _any_of(matchers)
    verbs = _union(dispatch(tree, "verb") for tree in conditions)
    resources = _union(dispatch(tree, "objectRef.resource") for tree in conditions)
    indexed = frozenset(f for f, found in (("verb", verbs), ("objectRef.resource", resources)) if found is not None)
    gate = gate_of(conditions[0], skip=indexed) if len(conditions) == 1 else None
    tags = [(tag.namespace, tag.name) for tag in rule.tags]
    tactic = naming.tactic(tags)
    level = rule.level.name.lower() if rule.level else "medium"
    severity = naming.severity(level)
    sigma_id = str(rule.id) if rule.id else ""
    name = rule.name or title
    return Rule(
        rule_id=sigma_id or naming.rule_id(name),
        title=title,
        description=(rule.description or title).strip(),
        level=level,
        severity=severity,
        tactic=tactic,
        technique=naming.technique(tags),
        finding_type=naming.finding_type(tactic, name),
        source=str(path),
        text=text,
        matcher=matcher,
        verbs=verbs,
        resources=resources,
        fields=_fields(rule),
        gate=gate,
        sigma_id=sigma_id,
        created_at=_created(rule, path),
        author=rule.author or "",
        tags=tuple(f"{ns}.{name}" for ns, name in tags),
    )


def _any_of(matchers: list[Matcher]) -> Matcher:
    return lambda view: any(match(view) for match in matchers)


def _union(found: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    total: set[str] = set()
    for values in found:
        if values is None:
            return None
        total |= values
    return frozenset(total)


def _fields(rule: SigmaRule) -> tuple[str, ...]:
    names: dict[str, None] = {}
    pending: list[Any] = list(rule.detection.detections.values())
    while pending:
        item = pending.pop(0)
        if isinstance(item, SigmaDetection):
            pending.extend(item.detection_items)
        elif isinstance(item, SigmaDetectionItem) and item.field:
            names[item.field] = None
    return tuple(names)


def _created(rule: SigmaRule, path: Path | str) -> datetime:
    stamp: date | None = rule.date
    if stamp is not None:
        return datetime(stamp.year, stamp.month, stamp.day, tzinfo=UTC)
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)
