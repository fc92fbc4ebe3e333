"""GuardDuty ``FindingCriteria`` as SQL over the finding columns, with the same answers as the evaluator.

Each condition on a field with a column (:data:`kubeguard.store.finding_columns.FIELD_COLUMNS`) becomes a
WHERE clause that reproduces :func:`kubeguard.findings.criteria.matches` on rows whose columns are exact
copies (``regular``): equality values are parsed the way the evaluator parses them (numbers for numeric
fields, ``true``/``false`` for booleans, verbatim text otherwise), an absent field (null) fails every
positive operator and passes every negated one, and a number compared with a boolean never matches.
Conditions with no faithful translation (numeric operators on text, wildcards, any field without a
column) are returned as the *residual* criterion, which the caller evaluates in Python on streamed rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Float, false, literal, or_, true

from kubeguard.findings.criteria import _number
from kubeguard.store.finding_columns import FIELD_COLUMNS, FieldColumn

_POSITIVE_EQUALITY = ("eq", "equals")
_NEGATIVE_EQUALITY = ("neq", "notEquals")
RANGE_OPERATORS = {
    "gt": "__gt__",
    "greaterThan": "__gt__",
    "gte": "__ge__",
    "greaterThanOrEqual": "__ge__",
    "lt": "__lt__",
    "lessThan": "__lt__",
    "lte": "__le__",
    "lessThanOrEqual": "__le__",
}


@dataclass(slots=True)
class SqlCriterion:
    """WHERE clauses that hold exactly for regular rows, and what is left for Python."""

    clauses: list[ColumnElement[bool]] = field(default_factory=list)
    residual: dict[str, dict[str, Any]] = field(default_factory=dict)


def translate(
    criterion: Mapping[str, Mapping[str, Any]], columns: Mapping[str, FieldColumn] = FIELD_COLUMNS
) -> SqlCriterion:
    """``criterion`` over ``columns`` (the finding columns unless another table keeps the same fields)."""
    result = SqlCriterion()
    for name, condition in criterion.items():
        spec = columns.get(name)
        clauses = _condition(spec, condition) if spec is not None else None
        if clauses is None:
            result.residual[name] = dict(condition)
        else:
            result.clauses.extend(clauses)
    return result


def _condition(spec: FieldColumn, condition: Mapping[str, Any]) -> list[ColumnElement[bool]] | None:
    clauses = []
    for operator, operand in condition.items():
        clause = _operator(spec, operator, operand)
        if clause is None:
            return None
        clauses.append(clause)
    return clauses


def _operator(spec: FieldColumn, operator: str, operand: Any) -> ColumnElement[bool] | None:
    column = spec.column
    if operator in _POSITIVE_EQUALITY or operator in _NEGATIVE_EQUALITY:
        wanted = _equality_values(spec.kind, operand)
        if spec.kind in ("number", "timestamp"):  # compare as floats, never rounded to the column's type
            wanted = [literal(number, Float()) for number in wanted]
        if operator in _POSITIVE_EQUALITY:
            return column.in_(wanted) if wanted else false()
        return or_(column.is_(None), column.not_in(wanted)) if wanted else true()
    method = RANGE_OPERATORS.get(operator)
    if method is None:  # wildcards: evaluated in Python
        return None
    if spec.kind == "bool":  # the evaluator never reads a boolean as a number
        return false()
    if spec.kind == "text":  # numeric text ("5", "1e3") compares as a number there; leave it to Python
        return None
    # Operands are 64-bit (criteria.validate), wider than an INTEGER column: bind them as such.
    return getattr(column, method)(literal(operand, BigInteger()))


def _equality_values(kind: str, operand: list[str]) -> list[Any]:
    """The column values that equal one of ``operand`` (criterion strings) under the evaluator's rules."""
    if kind == "text":
        return list(dict.fromkeys(operand))
    if kind == "bool":
        return [flag for flag in (True, False) if any(w.lower() == ("true" if flag else "false") for w in operand)]
    numbers = []
    for wanted in operand:
        number = _number(wanted)
        if number is not None and math.isfinite(number):
            numbers.append(number)
    return list(dict.fromkeys(numbers))
