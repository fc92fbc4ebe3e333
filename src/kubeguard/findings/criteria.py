"""GuardDuty ``FindingCriteria`` evaluated on wire-format findings.

A criterion maps a field name (``severity``, ``resource.kubernetesDetails.kubernetesWorkloadDetails.
containers.image``) to a condition (``{"eq": [...]}``, ``{"greaterThanOrEqual": 1486685375000}``). Conditions
on different fields are ANDed; the operators of one condition are ANDed too, so ``{"gte": 4, "lt": 7}`` is a
range. The rules follow the reference (§3.3):

- a path through a list (``containers.image``) matches if any element matches;
- ``eq``/``neq`` values are strings even for numbers and booleans, so values are compared as text, as
  numbers when both sides are numeric, and as lower-case ``true``/``false`` for booleans;
- ``severity`` and every other number compare numerically; the four finding timestamps (ISO-8601 strings on
  the wire) compare as epoch milliseconds;
- ``service.additionalInfo.<key>`` reaches inside the JSON string ``service.additionalInfo.value``;
- ``matches``/``notMatches`` take ``*`` and ``?`` wildcards (and nothing else: ``[`` is literal).

Field names use GuardDuty's filter spelling, which differs from the wire in case only (``hostIpc`` for
``hostIPC``), so path segments are looked up case-insensitively when the exact key is missing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

EQUALITY_OPERATORS = ("eq", "equals", "neq", "notEquals")
NUMERIC_OPERATORS = (
    "gt",
    "gte",
    "lt",
    "lte",
    "greaterThan",
    "greaterThanOrEqual",
    "lessThan",
    "lessThanOrEqual",
)
WILDCARD_OPERATORS = ("matches", "notMatches")
#: Fields whose wire value is an ISO-8601 string but whose criteria are epoch milliseconds.
TIMESTAMP_FIELDS = frozenset({"createdAt", "updatedAt", "service.eventFirstSeen", "service.eventLastSeen"})
MAX_EQUALITY_VALUES = 50
MAX_WILDCARD_VALUES = 5
MAX_WILDCARD_LENGTH = 512
MAX_CRITERION_FIELDS = 100

_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*){0,15}")
_ADDITIONAL_INFO = "service.additionalInfo"
_NEGATED = frozenset({"neq", "notEquals", "notMatches"})


#: Numbers in criteria are 64-bit (Java ``long`` in GuardDuty's model); anything wider is refused.
MIN_LONG, MAX_LONG = -(2**63), 2**63 - 1


class CriteriaError(ValueError):
    """A criterion the GuardDuty API would reject; the message is shown to the caller."""


@lru_cache(maxsize=1)
def filter_fields() -> dict[str, str]:
    """GuardDuty's filterable field names (``kubeguard/data/filter-fields.txt``), keyed by lower case."""
    text = resources.files("kubeguard").joinpath("data/filter-fields.txt").read_text(encoding="utf-8")
    return {line.strip().lower(): line.strip() for line in text.splitlines() if line.strip()}


def check_field(field: str) -> None:
    """Refuse a field GuardDuty does not filter on, naming the closest valid ones.

    ``service.additionalInfo.<key>`` is open-ended (it reaches into the additionalInfo JSON), so any key
    below it is accepted. Case differences are tolerated, as in :func:`field_values`.
    """
    known = filter_fields()
    if field.lower() in known or field.startswith(_ADDITIONAL_INFO + "."):
        return
    close = difflib.get_close_matches(field, list(known.values()), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise CriteriaError(
        f"unknown criterion field {field!r}{hint} (valid: GuardDuty's {len(known)} filter fields, e.g. "
        "severity, type, updatedAt, service.archived, resource.eksClusterDetails.name, "
        "resource.kubernetesDetails.kubernetesUserDetails.username)"
    )


Criterion = Mapping[str, Mapping[str, Any]]


def validate(criterion: Any, *, allow_wildcards: bool) -> dict[str, dict[str, Any]]:
    """Check a ``criterion`` map from a request and return it as plain dicts.

    ``allow_wildcards`` is true only for CreateFilter/UpdateFilter, the only operations that accept
    ``matches``/``notMatches``.
    """
    if criterion is None:
        return {}
    if not isinstance(criterion, dict):
        raise CriteriaError("findingCriteria.criterion must be an object")
    if len(criterion) > MAX_CRITERION_FIELDS:
        raise CriteriaError(f"findingCriteria.criterion has more than {MAX_CRITERION_FIELDS} fields")
    checked: dict[str, dict[str, Any]] = {}
    for field, condition in criterion.items():
        if not isinstance(field, str) or not _FIELD_NAME.fullmatch(field):
            raise CriteriaError(f"invalid criterion field name: {field!r}")
        check_field(field)
        if not isinstance(condition, dict) or not condition:
            raise CriteriaError(f"criterion {field} must be a non-empty condition object")
        for operator, value in condition.items():
            _validate_operator(field, operator, value, allow_wildcards)
        checked[field] = dict(condition)
    return checked


def _validate_operator(field: str, operator: str, value: Any, allow_wildcards: bool) -> None:
    where = f"criterion {field}.{operator}"
    if operator in EQUALITY_OPERATORS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CriteriaError(f"{where} must be a list of strings")
        if len(value) > MAX_EQUALITY_VALUES:
            raise CriteriaError(f"{where} has more than {MAX_EQUALITY_VALUES} values")
    elif operator in NUMERIC_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CriteriaError(f"{where} must be an integer")
        if not MIN_LONG <= value <= MAX_LONG:
            raise CriteriaError(f"{where} is outside the 64-bit range")
    elif operator in WILDCARD_OPERATORS:
        if not allow_wildcards:
            raise CriteriaError(f"{where}: matches/notMatches are only accepted by filters")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CriteriaError(f"{where} must be a list of strings")
        if len(value) > MAX_WILDCARD_VALUES:
            raise CriteriaError(f"{where} has more than {MAX_WILDCARD_VALUES} values")
        if any(not 1 <= len(v) <= MAX_WILDCARD_LENGTH for v in value):
            raise CriteriaError(f"{where} values must be 1 to {MAX_WILDCARD_LENGTH} characters")
    else:
        raise CriteriaError(f"unknown operator {operator!r} in criterion {field}")


def matches(criterion: Criterion, finding: Mapping[str, Any]) -> bool:
    """True if ``finding`` (a camelCase wire dict) satisfies every condition of ``criterion``."""
    return all(_condition_holds(field, condition, finding) for field, condition in criterion.items())


def _condition_holds(field: str, condition: Mapping[str, Any], finding: Mapping[str, Any]) -> bool:
    values = field_values(finding, field)
    if field in TIMESTAMP_FIELDS:
        values = [epoch_ms(v) if isinstance(v, str) else v for v in values]
    for operator, operand in condition.items():
        test = _operator_test(operator, operand)
        hit = any(test(v) for v in values)
        if operator in _NEGATED:
            if hit:
                return False
        elif not hit:
            return False
    return True


def _operator_test(operator: str, operand: Any) -> Callable[[Any], bool]:
    if operator in ("eq", "equals", "neq", "notEquals"):
        wanted = list(operand)
        return lambda value: any(_equal(value, w) for w in wanted)
    if operator in WILDCARD_OPERATORS:
        patterns = [_wildcard(p) for p in operand]
        return lambda value: any(p.fullmatch(_text(value)) for p in patterns)
    compare = _COMPARISONS[operator]
    return lambda value: (number := _number(value)) is not None and compare(number, operand)


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "greaterThan": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "greaterThanOrEqual": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lessThan": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "lessThanOrEqual": lambda a, b: a <= b,
}


def field_values(finding: Mapping[str, Any], field: str) -> list[Any]:
    """Every scalar the dotted ``field`` reaches in ``finding``, fanning out through lists."""
    if field.startswith(_ADDITIONAL_INFO + ".") and field not in (
        f"{_ADDITIONAL_INFO}.value",
        f"{_ADDITIONAL_INFO}.type",
    ):
        info = _additional_info(finding)
        rest = field[len(_ADDITIONAL_INFO) + 1 :].split(".")
        return list(_walk(info, rest))
    return list(_walk(finding, field.split(".")))


def _additional_info(finding: Mapping[str, Any]) -> Any:
    raw = (finding.get("service") or {}).get("additionalInfo", {}).get("value")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}


def _walk(node: Any, path: list[str]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if not isinstance(node, Mapping):
        return
    head, rest = path[0], path[1:]
    if head in node:
        yield from _walk(node[head], rest)
        return
    folded = head.lower()
    for key, child in node.items():
        if key.lower() == folded:
            yield from _walk(child, rest)
            return


def _equal(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted.lower() == ("true" if value else "false")
    if isinstance(value, int | float):
        number = _number(wanted)
        return number is not None and float(value) == number
    return _text(value) == wanted


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def epoch_ms(timestamp: str) -> int | str:
    """ISO-8601 (``2024-05-14T09:31:07.412Z``) to epoch milliseconds; unreadable text stays text."""
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@lru_cache(maxsize=512)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """``*`` is any run of characters and ``?`` any one; everything else is literal."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)
