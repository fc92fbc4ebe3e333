"""A Sigma condition tree (as pySigma parses it) compiled into one Python function per rule.

pySigma resolves ``1 of``/``all of``/``them``, detection names, lists and the ``all`` modifier into a tree
of AND/OR/NOT over leaves that test one field (``ConditionFieldEqualsValueExpression``) or search the
whole event for a keyword (``ConditionValueExpression``). Each node becomes a closure; AND tests its
cheap leaves (fields of the typed event) before those that decode a request or response body, so a
rule that starts with ``verb`` and ``objectRef.resource`` costs two string comparisons on most events.

:func:`dispatch` reads the same tree for the verbs and resources a rule can possibly match, so the
detector offers each event only to the rules that could fire on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaCIDRExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaRegularExpression,
    SigmaString,
)

from kubeguard.detectors.rules.fields import EventView, accessor, is_cheap, single_reader
from kubeguard.detectors.rules.values import UnsupportedValue, as_text, compile_value

Matcher = Callable[[EventView], bool]


def compile_condition(node: Any) -> Matcher:
    """The matcher for a postprocessed pySigma condition tree."""
    if isinstance(node, ConditionAND):
        parts = sorted(node.args, key=_cost)
        tests = tuple(compile_condition(arg) for arg in parts)
        if len(tests) == 2:
            first, second = tests
            return lambda view: first(view) and second(view)

        def all_of(view: EventView) -> bool:
            for test in tests:  # noqa: SIM110 - a loop is cheaper than a generator on the hot path
                if not test(view):
                    return False
            return True

        return all_of
    if isinstance(node, ConditionOR):
        tests = tuple(compile_condition(arg) for arg in node.args)

        def any_of(view: EventView) -> bool:
            for test in tests:  # noqa: SIM110
                if test(view):
                    return True
            return False

        return any_of
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda view: not inner(view)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_test(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return _keyword_test(node.value)
    raise UnsupportedValue(f"condition element {type(node).__name__} is not supported")


def _field_test(field: str, value: Any) -> Matcher:
    read = accessor(field)
    if isinstance(value, SigmaNull):
        return lambda view: all(v is None for v in read(view))
    if isinstance(value, SigmaExists):
        if value.exists:
            return lambda view: any(v is not None for v in read(view))
        return lambda view: all(v is None for v in read(view))
    if isinstance(value, SigmaFieldReference):
        other = accessor(value.field)

        def same_as(view: EventView) -> bool:
            theirs = {text.lower() for v in other(view) if (text := as_text(v)) is not None}
            return any((text := as_text(v)) is not None and text.lower() in theirs for v in read(view))

        return same_as
    test = compile_value(value)
    single = single_reader(field)
    if single is not None:

        def scalar_matches(view: EventView) -> bool:
            found = single(view.event)
            return found is not None and test(found)

        return scalar_matches

    def field_matches(view: EventView) -> bool:
        for item in read(view):  # noqa: SIM110
            if test(item):
                return True
        return False

    return field_matches


def _keyword_test(value: Any) -> Matcher:
    """A keyword is searched in every string of the event, as a full-text search would: ``miner``
    matches ``evil/miner:latest``; wildcards and modifiers keep their meaning."""
    if isinstance(value, SigmaString) and not value.contains_special():
        value = type(value)("*" + value.convert() + "*")
    test = compile_value(value)
    return lambda view: any(test(text) for text in view.strings())


def _cost(node: Any) -> int:
    """Cheaper tests first in an AND: exact tests on typed fields, then patterns, bodies, keyword searches."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        pattern = isinstance(node.value, SigmaRegularExpression | SigmaCIDRExpression)
        return (0 if is_cheap(node.field) else 2) + (1 if pattern else 0)
    if isinstance(node, ConditionValueExpression):
        return 5
    return 4


# -- dispatch --------------------------------------------------------------------------------------

#: No constraint: the rule may match any value of the field.
ANY = None


def dispatch(node: Any, field: str) -> frozenset[str] | None:
    """The lower-cased values ``field`` must take for the rule to match, or None when unconstrained.

    Only exact (wildcard-free, case-insensitive) strings constrain; an AND is as narrow as its narrowest
    constrained part, an OR as wide as all of its parts, a NOT constrains nothing.
    """
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if node.field == field and isinstance(value, SigmaString) and not value.contains_special():
            return frozenset({"".join(part for part in value.s if isinstance(part, str)).lower()})
        return ANY
    if isinstance(node, ConditionAND):
        found: frozenset[str] | None = ANY
        for arg in node.args:
            narrowed = dispatch(arg, field)
            if narrowed is not None:
                found = narrowed if found is None else found & narrowed
        return found
    if isinstance(node, ConditionOR):
        union: set[str] = set()
        for arg in node.args:
            widened = dispatch(arg, field)
            if widened is None:
                return ANY
            union |= widened
        return frozenset(union)
    return ANY

