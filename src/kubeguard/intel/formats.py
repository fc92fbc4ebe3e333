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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kubeguard.intel.ipset import IPSet, IPSetBuilder

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
MAX_LINE_CHARS = 16384
"""Longer than any legitimate row (a FireEye row with a long title fits); longer ones are reported."""
MAX_PROBLEMS = 1000
"""Problems kept on a result; the rest are only counted, so a junk file cannot exhaust memory."""
_SNIPPET = 120
_LOGGED_PROBLEMS = 20  # each of the first few is logged as a warning, the rest at debug plus a summary
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


class _Context:
    """What a parser needs besides its input: a place to report problems and count ignored rows."""

    def __init__(self, result: ParsedList, source: str, max_line_chars: int) -> None:
        self.result = result
        self.source = source
        self.max_line_chars = max_line_chars

    def report(self, line: int, text: str, reason: str) -> None:
        problems = self.result.problems
        level = logging.WARNING if len(problems) < _LOGGED_PROBLEMS else logging.DEBUG
        log.log(level, "%s:%d: skipped %r: %s", self.source or "list", line, _snip(text), reason)
        if len(problems) >= MAX_PROBLEMS:
            self.result.problems_dropped += 1
        else:
            problems.append(ListProblem(line, _snip(text), reason))

    def ignore(self) -> None:
        self.result.ignored += 1

    def lines(self, text: str) -> Iterator[tuple[int, str]]:
        """Number lines from 1, reporting and skipping any over the length limit."""
        for number, line in enumerate(text.splitlines(), start=1):
            if len(line) > self.max_line_chars:
                self.report(number, line, f"line is {len(line)} characters, over {self.max_line_chars}")
            else:
                yield number, line


_Entry = tuple[int, str]
"""(line, entry text) handed to :meth:`IPSetBuilder.add`."""
_Parser = Callable[[str, _Context], Iterator[_Entry]]


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
    result = ParsedList(fmt, IPSet())
    context = _Context(result, source, max_line_chars)
    entries = _stix(data, context) if fmt == "STIX" else _TEXT_PARSERS[fmt](_decode(data), context)
    builder = IPSetBuilder()
    for line, text in entries:
        try:
            builder.add(text)
        except ValueError as exc:
            context.report(line, text, str(exc))
    result.ipset = builder.build()
    if result.problem_count > _LOGGED_PROBLEMS:
        log.warning("%s: %d entries skipped in all", source or "list", result.problem_count)
    return result


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


def _strip_comment(line: str) -> str:
    """Drop ``#`` and ``;`` comments (FireHOL, Feodo and Spamhaus DROP all use one of them)."""
    for marker in ("#", ";"):
        line = line.partition(marker)[0]
    return line.strip()


def _txt(text: str, context: _Context) -> Iterator[_Entry]:
    """TXT (and the Tor bulk exit list): one IP, CIDR or range per line; comments and blanks skipped."""
    for number, line in context.lines(text):
        entry = _strip_comment(line)
        if entry:
            yield number, entry


def _tor_exit_addresses(text: str, context: _Context) -> Iterator[_Entry]:
    """Tor's ``exit-addresses``: the address is the second field of each ``ExitAddress`` line."""
    for number, line in context.lines(text):
        fields = line.split()
        if not fields or fields[0] in _TOR_OTHER_KEYWORDS:
            continue
        if fields[0] != "ExitAddress" or len(fields) < 2:
            context.report(number, line, "not an exit-addresses line")
            continue
        yield number, fields[1]


_TOR_OTHER_KEYWORDS = frozenset({"ExitNode", "Published", "LastStatus"})


def _csv_rows(text: str, context: _Context) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with the number of the line each ends on; malformed rows are reported and skipped."""
    current = 0

    def feed() -> Iterator[str]:
        nonlocal current
        for number, line in context.lines(text):
            current = number
            yield line

    reader = csv.reader(feed(), skipinitialspace=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            context.report(current, "", f"bad CSV: {exc}")
            continue
        if any(cell.strip() for cell in row):
            yield current, [cell.strip() for cell in row]


def _otx_csv(text: str, context: _Context) -> Iterator[_Entry]:
    """AlienVault OTX export: ``Indicator type, Indicator, Description``; IPv4, IPv6 and CIDR rows count."""
    kind_column, value_column = 0, 1
    for number, row in _csv_rows(text, context):
        lowered = [cell.lower() for cell in row]
        if "indicator type" in lowered and "indicator" in lowered:
            kind_column, value_column = lowered.index("indicator type"), lowered.index("indicator")
            continue
        if len(row) <= max(kind_column, value_column):
            context.report(number, ",".join(row), "missing Indicator column")
        elif row[kind_column].lower() in _OTX_IP_TYPES:
            yield number, row[value_column]
        else:
            context.ignore()


_OTX_IP_TYPES = frozenset({"ipv4", "ipv6", "cidr"})


def _fire_eye(text: str, context: _Context) -> Iterator[_Entry]:
    """FireEye iSIGHT CSV: a header names the columns; IPs come from ``ip``, ``sourceIp`` and ``cidr``."""
    columns: list[int] | None = None
    for number, row in _csv_rows(text, context):
        if columns is None:
            lowered = [cell.lower() for cell in row]
            columns = [index for index, name in enumerate(lowered) if name in _FIRE_EYE_COLUMNS]
            if not columns:
                raise ListError("FIRE_EYE list has no header with ip, sourceIp or cidr columns")
            continue
        values = [row[index] for index in columns if index < len(row) and row[index]]
        if not values:
            context.ignore()
        for value in values:
            yield number, value


_FIRE_EYE_COLUMNS = frozenset({"ip", "sourceip", "cidr"})


def _proof_point(text: str, context: _Context) -> Iterator[_Entry]:
    """Proofpoint ET Intelligence CSV: ``ip, category, score, first_seen, last_seen, ports``."""
    for number, row in _csv_rows(text, context):
        if row[0].lower() == "ip":
            continue
        yield number, row[0]


def _alien_vault(text: str, context: _Context) -> Iterator[_Entry]:
    """AlienVault reputation: ``ip#reliability#risk#activity#country#city#lat,lon#x``."""
    for number, line in context.lines(text):
        if not line.strip():
            continue
        address = line.partition("#")[0].strip()
        if address:
            yield number, address
        else:
            context.report(number, line, "empty ip field")


def _stix(data: bytes, context: _Context) -> Iterator[_Entry]:
    # Imported here: defusedxml's SAX reader pulls in urllib.request and ssl, a cost every scan would pay
    # at start-up although few users load STIX lists.
    from kubeguard.intel.stix import StixError, iter_stix

    try:
        values = iter_stix(data)
    except StixError as exc:
        raise ListError(str(exc)) from exc
    for value in values:
        if value.error:
            context.report(value.line, value.first, value.error)
        elif not value.ip:
            context.ignore()
        else:
            yield value.line, f"{value.first}-{value.last}" if value.last else value.first


_TEXT_PARSERS: dict[str, _Parser] = {
    "TXT": _txt,
    "OTX_CSV": _otx_csv,
    "FIRE_EYE": _fire_eye,
    "PROOF_POINT": _proof_point,
    "ALIEN_VAULT": _alien_vault,
    "TOR_BULK": _txt,
    "TOR_EXIT_ADDRESSES": _tor_exit_addresses,
}

FORMATS: tuple[str, ...] = (
    "TXT",
    "STIX",
    "OTX_CSV",
    "FIRE_EYE",
    "PROOF_POINT",
    "ALIEN_VAULT",
    "TOR_BULK",
    "TOR_EXIT_ADDRESSES",
)
"""Format names accepted by :func:`parse_list`: GuardDuty's six, then the Tor Project's two."""


def detect_format(data: bytes, name: str = "") -> str:
    """Guess the format from the content (and, for Tor's lists, the name); TXT when nothing else fits."""
    head = data[:_BINARY_SAMPLE].decode("utf-8-sig", errors="replace")
    stripped = head.lstrip()
    if stripped.startswith("<"):
        return "STIX"
    if "exit-addresses" in name or any(line.startswith("ExitNode ") for line in head.splitlines()[:20]):
        return "TOR_EXIT_ADDRESSES"
    first = next((line.strip() for line in head.splitlines() if _strip_comment(line)), "")
    lowered = first.lower().replace(" ", "")
    if lowered.startswith("indicatortype,"):
        return "OTX_CSV"
    if lowered.startswith("reportid,") or ("sourceip" in lowered and "cidr" in lowered):
        return "FIRE_EYE"
    if lowered.startswith("ip,category,") or first.count(",") >= 4:
        return "PROOF_POINT"
    if first.count("#") >= 6:
        return "ALIEN_VAULT"
    return "TXT"


def _snip(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."
