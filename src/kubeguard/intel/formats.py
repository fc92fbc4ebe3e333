"""Parsers for threat and trusted IP lists: GuardDuty's six formats and the Tor Project's two.

A list is untrusted input downloaded from the internet, so every parser is bounded: the file size, the
length of a line and the number of problems kept are capped, and binary data is refused before parsing.
Two kinds of failure are kept apart:

* the file is not a list at all (binary, too large, hostile or broken XML): :class:`ListError` is raised;
* an entry is malformed: it becomes a :class:`ListProblem` on the result, is logged, and the rest loads.

Rows that are well formed but carry no IP (a domain in an OTX export, a URL in a FireEye feed) are counted
in ``ParsedList.ignored`` rather than reported, since they are not mistakes.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from kubeguard.intel.ipset import IPSet, IPSetBuilder
from kubeguard.intel.stix import StixEntry, iter_stix

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "MAX_PROBLEMS",
    "ListError",
    "ListProblem",
    "ParsedList",
    "detect_format",
    "parse_list",
]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 35 * 1024 * 1024
"""GuardDuty's limit for a list file."""
MAX_LINE_CHARS = 8192
"""No legitimate list line is near this; longer ones are reported and skipped."""
MAX_PROBLEMS = 1000
"""Problems kept on a result; the rest are only counted, so a junk file cannot exhaust memory."""
_SNIPPET = 120
_BINARY_SAMPLE = 65536


class ListError(ValueError):
    """The data is not a usable list at all; nothing was loaded."""


@dataclass(frozen=True, slots=True)
class ListProblem:
    """One skipped entry: its 1-based line (0 when the format has no lines), a snippet and why."""

    line: int
    text: str
    reason: str


@dataclass(slots=True)
class ParsedList:
    """The outcome of parsing one list."""

    format: str
    ipset: IPSet
    problems: list[ListProblem] = field(default_factory=list)
    problems_dropped: int = 0
    ignored: int = 0

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.problems_dropped


@dataclass(frozen=True, slots=True)
class _Entry:
    line: int
    text: str


_Item = _Entry | ListProblem
_Parser = Callable[[str, "_Counter"], Iterator[_Item]]


class _Counter:
    """Counts rows that are valid but hold no IP (domains, URLs, hashes)."""

    def __init__(self) -> None:
        self.ignored = 0


def parse_list(
    data: bytes,
    fmt: str | None = None,
    *,
    source: str = "",
    max_bytes: int = MAX_FILE_BYTES,
    max_line_chars: int = MAX_LINE_CHARS,
) -> ParsedList:
    """Parse ``data`` as a list in ``fmt`` (one of :data:`FORMATS`; detected when ``None``).

    ``source`` only names the list in log messages. Raises :class:`ListError` if the whole file is refused.
    """
    if len(data) > max_bytes:
        raise ListError(f"list is {len(data)} bytes, over the {max_bytes}-byte limit")
    fmt = (fmt or detect_format(data, source)).upper()
    if fmt not in FORMATS:
        raise ListError(f"unknown list format {fmt!r}; expected one of {', '.join(FORMATS)}")
    builder = IPSetBuilder()
    result = ParsedList(fmt, IPSet())
    counter = _Counter()
    if fmt == "STIX":
        items: Iterable[_Item] = _stix(data)
    else:
        items = FORMATS[fmt](_decode(data), counter)
        items = _bounded_lines(items, max_line_chars) if False else items
    for item in items:
        if isinstance(item, ListProblem):
            _report(result, item, source)
            continue
        try:
            builder.add(item.text)
        except ValueError as exc:
            _report(result, ListProblem(item.line, _snip(item.text), str(exc)), source)
    result.ipset = builder.build()
    result.ignored = counter.ignored
    if result.problems_dropped:
        log.warning("%s: %d more problems not shown", source or "list", result.problems_dropped)
    return result


def _report(result: ParsedList, problem: ListProblem, source: str) -> None:
    if len(result.problems) >= MAX_PROBLEMS:
        result.problems_dropped += 1
        return
    result.problems.append(problem)
    log.warning("%s:%d: skipped %r: %s", source or "list", problem.line, problem.text, problem.reason)


def _decode(data: bytes) -> str:
    """Decode text, refusing binary: a NUL byte or mostly undecodable bytes mean it is not a list."""
    sample = data[:_BINARY_SAMPLE]
    if b"\x00" in sample:
        raise ListError("binary data (NUL bytes), not a text list")
    text = data.decode("utf-8-sig", errors="replace")
    bad = text[:_BINARY_SAMPLE].count("\ufffd")
    if bad > 16 and bad * 10 > len(sample):
        raise ListError("binary data (not UTF-8 text), not a text list")
    return text


def _lines(text: str, max_chars: int) -> Iterator[tuple[int, str] | ListProblem]:
    """Number lines from 1; a line over ``max_chars`` becomes a problem instead."""
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > max_chars:
            yield ListProblem(number, _snip(line), f"line is {len(line)} characters, over {max_chars}")
        else:
            yield number, line


def _snip(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."
