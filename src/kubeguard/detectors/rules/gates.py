"""Gates: one necessary test per rule, answered once per distinct field value for all rules alike.

Most rules that the verb/resource index cannot narrow still require one typed field to pass a test:
``userAgent|re``, ``user.username|startswith``, ``responseStatus.code|gte``, ``objectRef.namespace``. Such a
test (a conjunct at the top of the rule's condition, on a field that holds one scalar) is the rule's gate.
The detector groups rules by gate field and remembers, per distinct value, which rules' gates pass, so an
event costs one dict lookup per gate field instead of one test per rule; user agents, namespaces, user
names and status codes repeat endlessly, so the memory hits almost always. Only rules whose gate passes
are then evaluated in full, which keeps the result exactly what evaluating every rule would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionOR
from sigma.types import SigmaExists, SigmaFieldReference, SigmaNull

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.rules.fields import single_reader
from kubeguard.detectors.rules.values import Predicate, compile_value

#: Distinct values a gate group remembers before it starts over.
GATE_MEMORY = 8192


@dataclass(frozen=True, slots=True)
class Gate:
    field: str
    read: Callable[[AuditEvent], Any]
    test: Predicate


def gate_of(tree: Any, *, skip: frozenset[str]) -> Gate | None:
    """A necessary single-field test of ``tree``, or None; fields in ``skip`` are already indexed."""
    for node in _conjuncts(tree):
        field, tests = _same_field_tests(node)
        if field is None or field in skip:
            continue
        read = single_reader(field)
        if read is None:
            continue
        if len(tests) == 1:
            return Gate(field, read, tests[0])
        return Gate(field, read, _any(tests))
    return None


def _any(tests: tuple[Predicate, ...]) -> Predicate:
    return lambda value: any(test(value) for test in tests)


def _present(_value: Any) -> bool:
    return True


def _conjuncts(node: Any) -> Iterator[Any]:
    if isinstance(node, ConditionAND):
        for arg in node.args:
            yield from _conjuncts(arg)
    else:
        yield node


def _same_field_tests(node: Any) -> tuple[str | None, tuple[Predicate, ...]]:
    """A value leaf, or an OR of value leaves on one field: (field, predicates); else (None, ())."""
    leaves = node.args if isinstance(node, ConditionOR) else [node]
    fields = set()
    tests = []
    for leaf in leaves:
        if not isinstance(leaf, ConditionFieldEqualsValueExpression):
            return None, ()
        if isinstance(leaf.value, SigmaExists) and leaf.value.exists:
            tests.append(_present)  # the gate group passes only present values to its tests
        elif isinstance(leaf.value, SigmaNull | SigmaExists | SigmaFieldReference):
            return None, ()
        else:
            tests.append(compile_value(leaf.value))
        fields.add(leaf.field)
    if len(fields) != 1:
        return None, ()
    return fields.pop(), tuple(tests)


class GateGroup:
    """The rules of one route that share a gate field, and what each value of the field lets through."""

    __slots__ = ("read", "members", "_passing")

    def __init__(self, read: Callable[[AuditEvent], Any], members: list[tuple[int, Predicate]]) -> None:
        self.read = read
        self.members = members
        self._passing: dict[Any, tuple[int, ...]] = {}

    def passing(self, event: AuditEvent) -> tuple[int, ...]:
        """Positions (in load order) of the member rules whose gate this event passes."""
        value = self.read(event)
        if value is None:
            return ()
        found = self._passing.get(value)
        if found is None:
            found = tuple(position for position, test in self.members if test(value))
            if len(self._passing) >= GATE_MEMORY:
                self._passing.clear()
            self._passing[value] = found
        return found
