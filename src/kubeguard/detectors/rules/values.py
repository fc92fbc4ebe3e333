"""Sigma values (after pySigma has applied the modifiers) as Python predicates over one field value.

pySigma turns ``contains``, ``startswith``, ``endswith`` and plain wildcards into a :class:`SigmaString`
with wildcard parts, ``re`` into :class:`SigmaRegularExpression`, ``cidr`` into
:class:`SigmaCIDRExpression`, ``gt``/``gte``/``lt``/``lte``/``neq`` into :class:`SigmaCompareExpression`,
``base64offset``/``windash`` into :class:`SigmaExpansion`, and ``all`` into an AND of leaves. Each is
compiled here once into the cheapest test that has Sigma's meaning: string matching is
case-insensitive unless the rule says ``cased``; regular expressions are case-sensitive and unanchored
unless their flags say otherwise; numbers compare numerically with numbers and numeric strings.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable
from typing import Any

from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

Predicate = Callable[[Any], bool]


class UnsupportedValue(ValueError):
    """A Sigma value kubeguard cannot evaluate (placeholders, query expressions, ...)."""


def as_text(value: Any) -> str | None:
    """The text a string comparison sees: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def compile_value(value: Any) -> Predicate:
    """A predicate for one field value; raises :class:`UnsupportedValue` for what cannot be evaluated."""
    if isinstance(value, SigmaString):
        return _string(value)
    if isinstance(value, SigmaBool):
        return _boolean(bool(value))
    if isinstance(value, SigmaNumber):
        return _number_equals(value.number)
    if isinstance(value, SigmaRegularExpression):
        return _regex(value)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr(value.network)
    if isinstance(value, SigmaCompareExpression):
        return _compare(value.op, value.number.number)
    if isinstance(value, SigmaExpansion):
        tests = tuple(compile_value(v) for v in value.values)
        return lambda v: any(test(v) for test in tests)
    raise UnsupportedValue(f"value {value!s} ({type(value).__name__}) cannot be evaluated on audit events")


def _string(value: SigmaString) -> Predicate:
    if value.contains_placeholder():
        raise UnsupportedValue(f"placeholder in {value.original!r} needs a processing pipeline; kubeguard applies none")
    cased = isinstance(value, SigmaCasedString)
    parts = value.s
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    if any(p is SpecialChars.WILDCARD_SINGLE for p in specials) or len(plain) > 1:
        pattern = re.compile(_wildcard_regex(parts), re.DOTALL if cased else re.IGNORECASE | re.DOTALL)
        return _text_test(_remembered(lambda text: pattern.fullmatch(text) is not None))
    needle = plain[0] if plain else ""
    if not cased:
        needle = needle.lower()
    lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    trail = len(parts) > 1 and parts[-1] is SpecialChars.WILDCARD_MULTI
    if lead and trail:
        check: Callable[[str], bool] = lambda text: needle in text  # noqa: E731
    elif lead:
        check = lambda text: text.endswith(needle)  # noqa: E731
    elif trail:
        check = lambda text: text.startswith(needle)  # noqa: E731
    else:
        check = needle.__eq__
    if cased:
        return _text_test(check)
    return _text_test(lambda text: check(text.lower()))


def _wildcard_regex(parts: list[Any]) -> str:
    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(re.escape(part))
        elif part is SpecialChars.WILDCARD_MULTI:
            pieces.append(".*")
        else:
            pieces.append(".")
    return "".join(pieces)


#: Distinct texts a pattern remembers its answer for; the fields patterns test (user agents, URIs, names)
#: repeat endlessly, and a dict lookup is several times cheaper than a regular-expression search.
PATTERN_MEMORY = 4096


def _remembered(check: Callable[[str], bool]) -> Callable[[str], bool]:
    answers: dict[str, bool] = {}

    def remembered(text: str) -> bool:
        answer = answers.get(text)
        if answer is None:
            if len(answers) >= PATTERN_MEMORY:
                answers.clear()
            answer = answers[text] = check(text)
        return answer

    return remembered


def _text_test(check: Callable[[str], bool]) -> Predicate:
    def test(value: Any) -> bool:
        if type(value) is str:
            return check(value)
        text = as_text(value)
        return text is not None and check(text)

    return test


def _boolean(expected: bool) -> Predicate:
    text = "true" if expected else "false"

    def test(value: Any) -> bool:
        if isinstance(value, bool):
            return value is expected
        return isinstance(value, str) and value.lower() == text

    return test


def _number_equals(expected: float) -> Predicate:
    def test(value: Any) -> bool:
        number = as_number(value)
        return number is not None and number == expected

    return test


_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def _regex(value: SigmaRegularExpression) -> Predicate:
    flags = 0
    for flag in value.flags:
        flags |= _FLAGS[flag]
    pattern = re.compile(str(value.regexp), flags)
    return _text_test(_remembered(lambda text: pattern.search(text) is not None))


#: Parsed addresses by text: source IPs repeat endlessly, and parsing is the cost of a CIDR test.
_ADDRESSES: dict[str, tuple[int, int] | None] = {}
_ADDRESS_CACHE_LIMIT = 65_536


def parse_address(text: str) -> tuple[int, int] | None:
    """(IP version, integer value) of an address, or None when it is not one; cached, bounded."""
    found = _ADDRESSES.get(text, False)
    if found is not False:
        return found  # type: ignore[return-value]
    try:
        address = ipaddress.ip_address(text)
        parsed: tuple[int, int] | None = (address.version, int(address))
    except ValueError:
        parsed = None
    if len(_ADDRESSES) >= _ADDRESS_CACHE_LIMIT:
        _ADDRESSES.clear()
    _ADDRESSES[text] = parsed
    return parsed


def _cidr(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Predicate:
    version, first, last = network.version, int(network.network_address), int(network.broadcast_address)

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        parsed = parse_address(value)
        return parsed is not None and parsed[0] == version and first <= parsed[1] <= last

    return test


_OPERATORS = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
}


def _compare(op: CompareOperators, limit: float) -> Predicate:
    if op not in _OPERATORS:  # neq: any number but this one
        return lambda value: (number := as_number(value)) is not None and number != limit
    compare = _OPERATORS[op]

    def test(value: Any) -> bool:
        number = as_number(value)
        return number is not None and compare(number, limit)

    return test
