"""Which criterion fields have a column in ``kg_findings``, and whether a row's columns can be trusted.

A column is a copy of one wire field, converted the way :mod:`kubeguard.findings.criteria` converts it
(timestamps to epoch milliseconds). A query may answer from the columns instead of the body only when the
copy is exact: the field holds exactly one value of the column's kind (or is absent and the column is
null). :func:`is_regular` checks this with the criteria evaluator itself, so a finding kubeguard did not
write (hand-made, imported, legacy) is never misjudged in SQL; it is marked irregular and the query falls
back to evaluating bodies in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from kubeguard.findings.criteria import TIMESTAMP_FIELDS, epoch_ms, field_values
from kubeguard.store import schema

_table = schema.findings


@dataclass(frozen=True, slots=True)
class FieldColumn:
    """One criterion field stored in a column; ``kind`` is text, number, timestamp or bool."""

    field: str
    column: ColumnElement[Any]
    kind: str


FIELD_COLUMNS: dict[str, FieldColumn] = {
    spec.field: spec
    for spec in (
        FieldColumn("type", _table.c.type, "text"),
        FieldColumn("severity", _table.c.severity, "number"),
        FieldColumn("accountId", _table.c.account_id, "text"),
        FieldColumn("resource.eksClusterDetails.name", _table.c.cluster, "text"),
        FieldColumn("resource.resourceType", _table.c.resource_type, "text"),
        FieldColumn("resource.kubernetesDetails.kubernetesUserDetails.username", _table.c.username, "text"),
        FieldColumn("resource.kubernetesDetails.kubernetesWorkloadDetails.namespace", _table.c.namespace, "text"),
        FieldColumn("service.archived", _table.c.archived, "bool"),
        FieldColumn("service.count", _table.c.count, "number"),
        FieldColumn("createdAt", _table.c.created_at_ms, "timestamp"),
        FieldColumn("updatedAt", _table.c.updated_at_ms, "timestamp"),
        FieldColumn("service.eventFirstSeen", _table.c.event_first_seen_ms, "timestamp"),
        FieldColumn("service.eventLastSeen", _table.c.event_last_seen_ms, "timestamp"),
    )
}

#: Text that the store does not keep verbatim (NUL is replaced on write, see database._without_nul).
_ALTERED_TEXT = ("\x00", "\ufffd")


def _single(finding: Mapping[str, Any], field: str) -> Any:
    """The one value of ``field`` (timestamps as epoch ms), None when absent, or a marker when not one."""
    values = field_values(finding, field)
    if field in TIMESTAMP_FIELDS:
        values = [epoch_ms(v) if isinstance(v, str) else v for v in values]
    if not values:
        return None
    return values[0] if len(values) == 1 else _MANY


_MANY = object()


def _text_or_none(finding: Mapping[str, Any], field: str) -> str | None:
    value = _single(finding, field)
    return value if isinstance(value, str) else None


def _ms_or_none(finding: Mapping[str, Any], field: str) -> int | None:
    value = _single(finding, field)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def extra_values(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The columns added in schema version 7 (null when the finding lacks the field)."""
    return {
        "account_id": _text_or_none(finding, "accountId"),
        "event_first_seen_ms": _ms_or_none(finding, "service.eventFirstSeen"),
        "username": _text_or_none(finding, "resource.kubernetesDetails.kubernetesUserDetails.username"),
        "namespace": _text_or_none(finding, "resource.kubernetesDetails.kubernetesWorkloadDetails.namespace"),
        "resource_type": _text_or_none(finding, "resource.resourceType"),
    }


def is_regular(finding: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """True when every column in ``values`` (a row) is an exact copy of its field in ``finding``."""
    for spec in FIELD_COLUMNS.values():
        stored = values[spec.column.name]
        actual = _single(finding, spec.field)
        if actual is None:
            if stored is not None:
                return False
            continue
        if actual is _MANY or not _same(spec.kind, actual, stored):
            return False
    return True


def _same(kind: str, actual: Any, stored: Any) -> bool:
    if kind == "text":
        return isinstance(actual, str) and actual == stored and not any(c in actual for c in _ALTERED_TEXT)
    if kind == "bool":
        return isinstance(actual, bool) and actual == stored
    if isinstance(actual, bool) or not isinstance(actual, int | float) or stored is None:
        return False
    if kind == "timestamp":
        # Day grouping divides in SQL; keep to positive integers, where truncation and floor agree.
        return isinstance(actual, int) and 0 < actual == stored
    return float(actual) == float(stored)
