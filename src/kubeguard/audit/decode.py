"""Turn bytes on disk, on stdin or in a request body into AuditEvents.

Every input is one of two layouts: JSON Lines (a record per line, the usual output of the log backend and
of log exporters) or one JSON document (an Event, an EventList, an array, a ``filter-log-events``
response, possibly pretty-printed). Each record is one of four formats: the API server's own ``native``
Event/EventList, an EKS ``cloudwatch`` log event, a GKE ``gke`` LogEntry, or an AKS ``aks`` diagnostic
record. Gzip is recognised by its magic bytes. The format is sniffed from the first record of each input
unless the caller names it.

A record that cannot be read becomes a :class:`Reject` naming the source and line; decoding goes on.
"""

from __future__ import annotations

import gzip
import io
import logging
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import orjson

from kubeguard.audit.envelopes import AksLine, CloudWatchLine, unwrap_aks, unwrap_cloudwatch
from kubeguard.audit.event import AuditEvent
from kubeguard.audit.gke import LogEntry, event_from_log_entry

log = logging.getLogger(__name__)

FORMATS = ("auto", "native", "cloudwatch", "gke", "aks")
GZIP_MAGIC = b"\x1f\x8b"
#: The largest line or single document we read; larger ones are rejected, not buffered without end.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: How much JSON Lines input is read at a time. Small enough that each read, the join with the previous
#: read's partial line and the split reuse heap memory: at 4 MiB every block was a fresh ``mmap`` whose
#: page faults cost a third of the decoding time; at 64 KiB a block holds ~30 API-server events.
BLOCK_BYTES = 64 * 1024
#: How many rejects are kept with their details (all of them are counted).
MAX_KEPT_REJECTS = 1000
#: How many rejects are logged one by one; the rest are only counted and kept.
MAX_LOGGED_REJECTS = 20


#: How deep the API server's own JSON may nest (Go's encoding/json stops at 10,000 levels).
GO_MAX_NESTING = 10_000
#: msgspec counts nesting against the interpreter's recursion limit (1,000 by default), so an object the API
#: server logs at, say, 991 levels would otherwise be refused, and with it every event of its batch. The
#: limit is raised to hold Go's depth with room for the envelope. msgspec recurses in C, a few hundred bytes
#: a level; the threads that decode have the default 8 MiB stack (tested at 10,001 levels, in a thread too).
if sys.getrecursionlimit() < 2 * GO_MAX_NESTING + 500:
    sys.setrecursionlimit(2 * GO_MAX_NESTING + 500)

#: What a broken record raises while decoding (RecursionError: nesting deeper than the decoder allows).
RECORD_ERRORS = (msgspec.DecodeError, ValueError, UnicodeDecodeError, RecursionError)
#: What a broken input stream raises while it is read: a corrupt or truncated gzip member, an I/O error.
STREAM_ERRORS = (OSError, EOFError, zlib.error)


class UnknownFormatError(ValueError):
    """The input format named by the user does not exist, or the input matches none we know."""


@dataclass(slots=True, frozen=True)
class Reject:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass(slots=True)
class RejectLog:
    """Counts every reject and keeps the first ones for the report."""

    count: int = 0
    kept: list[Reject] = field(default_factory=list)

    def add(self, reject: Reject) -> None:
        self.count += 1
        if len(self.kept) < MAX_KEPT_REJECTS:
            self.kept.append(reject)
        if self.count <= MAX_LOGGED_REJECTS:
            log.warning("rejected %s", reject)


@dataclass(slots=True)
class DecodeResult:
    events: list[AuditEvent]
    rejects: list[Reject]


class _NativeRecord(AuditEvent, kw_only=True, gc=False):
    """An Event or an EventList: one decode tells them apart by the presence of ``items``."""

    items: list[AuditEvent] | None = None


_native_decoder = msgspec.json.Decoder(_NativeRecord)
_native_array_decoder = msgspec.json.Decoder(list[_NativeRecord])
_cloudwatch_decoder = msgspec.json.Decoder(CloudWatchLine)
_gke_decoder = msgspec.json.Decoder(LogEntry)
_aks_decoder = msgspec.json.Decoder(AksLine)

# A record decoder returns the events in one record and the cluster its envelope names ("" if none).
RecordDecoder = Callable[[bytes], tuple[list[AuditEvent], str]]


def _check_native(record: AuditEvent) -> None:
    if not (record.auditID or record.verb or record.requestURI):
        raise msgspec.ValidationError("not an audit event: no auditID, verb or requestURI")


def _decode_native(data: bytes) -> tuple[list[AuditEvent], str]:
    record = _native_decoder.decode(data)
    if record.items is not None:
        return list(record.items), ""
    _check_native(record)
    return [record], ""


class _RawEventList(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


_raw_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_raw_event_list_decoder = msgspec.json.Decoder(_RawEventList)


def salvage_native(data: bytes) -> tuple[list[AuditEvent], list[str]] | None:
    """Decode an EventList or array item by item, after one bad item failed the whole document.

    Returns the events that read and a reason per item that did not, or None when ``data`` is not a
    well-formed list of items at all (then the whole record is the reject). One bad event must not cost
    the other events of a webhook batch.
    """
    try:
        if data.lstrip().startswith(b"["):
            items = _raw_array_decoder.decode(data)
        else:
            items = _raw_event_list_decoder.decode(data).items
    except (msgspec.DecodeError, RecursionError):
        return None
    if items is None:
        return None
    events: list[AuditEvent] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            found, _ = _decode_native(bytes(item))
        except RECORD_ERRORS as error:
            problems.append(f"item {index}: {_reason(error)}")
        else:
            events.extend(found)
    return events, problems


def _decode_cloudwatch(data: bytes) -> tuple[list[AuditEvent], str]:
    return unwrap_cloudwatch(_cloudwatch_decoder.decode(data))


def _decode_gke(data: bytes) -> tuple[list[AuditEvent], str]:
    event, cluster = event_from_log_entry(_gke_decoder.decode(data))
    if event is None:
        raise msgspec.ValidationError("LogEntry is not a k8s.io audit entry")
    return [event], cluster


def _decode_aks(data: bytes) -> tuple[list[AuditEvent], str]:
    return unwrap_aks(_aks_decoder.decode(data))


_DECODERS: dict[str, RecordDecoder] = {
    "native": _decode_native,
    "cloudwatch": _decode_cloudwatch,
    "gke": _decode_gke,
    "aks": _decode_aks,
}


class _FormatKeys(msgspec.Struct, gc=False):
    """The top-level keys that tell the envelope formats apart.

    Values stay raw bytes (an empty ``Raw`` means the key is absent), so reading them only scans the JSON:
    no Python object is built for the rest of the record, unlike a full ``orjson.loads``.
    """

    protoPayload: msgspec.Raw = msgspec.Raw(b"")
    records: msgspec.Raw = msgspec.Raw(b"")
    properties: msgspec.Raw = msgspec.Raw(b"")
    category: msgspec.Raw = msgspec.Raw(b"")
    message: msgspec.Raw = msgspec.Raw(b"")
    logEvents: msgspec.Raw = msgspec.Raw(b"")
    events: msgspec.Raw = msgspec.Raw(b"")


#: The first line of a JSON Lines input: a native record and its format keys in one decode. When the
#: input is native (the usual case, and always the webhook's EventList), this decode is also the record's
#: own: the batch is parsed once, not once to sniff and again to read.
_FirstRecord = msgspec.defstruct(
    "_FirstRecord",
    [(name, msgspec.Raw, msgspec.Raw(b"")) for name in _FormatKeys.__struct_fields__],
    bases=(_NativeRecord,),
    kw_only=True,
    gc=False,
)


_format_keys_decoder = msgspec.json.Decoder(_FormatKeys | list[msgspec.Raw])
_first_record_decoder = msgspec.json.Decoder(_FirstRecord)


def _format_from_keys(keys: Any) -> str:
    """The format a record's top-level keys name (``keys`` is a ``_FormatKeys`` or a ``_FirstRecord``)."""
    if keys.protoPayload:
        return "gke"
    if keys.records or (keys.properties and keys.category):
        return "aks"
    if keys.message or keys.logEvents or bytes(keys.events).startswith(b"["):
        return "cloudwatch"
    return "native"


def sniff_record_format(data: bytes) -> str:
    """Name the format of one record (a JSON object, or an array of them) from its top-level keys."""
    try:
        document = _format_keys_decoder.decode(data)
        if isinstance(document, list):
            if not document or not bytes(document[0]).startswith(b"{"):
                return "native"
            document = _format_keys_decoder.decode(document[0])
    except (msgspec.DecodeError, RecursionError):  # not JSON, or not an object: the native decoder says why
        return "native"
    return "native" if isinstance(document, list) else _format_from_keys(document)


def _is_single_document(first_line: bytes) -> bool:
    """True when the input is one JSON document (an array, or pretty-printed) rather than JSON Lines.

    Pretty printers (``jq``, ``json.dumps(indent=...)``, the AWS CLI) put a lone ``{`` or ``[`` on the
    first line. Any other first line that is not a complete object is a broken JSON Lines record, and is
    rejected on its own while the lines after it are read.
    """
    stripped = first_line.strip()
    if stripped.startswith(b"[") or stripped == b"{":
        return True
    try:
        return not isinstance(orjson.loads(stripped), dict)
    except orjson.JSONDecodeError:
        return False


def _lines_layout(first_line: bytes, input_format: str | None) -> tuple[str, _NativeRecord | None] | None:
    """How to read an input, from its first non-blank line: None for one JSON document, else JSON Lines.

    For JSON Lines it returns the records' format and, when they are native EventLists, the first line
    already decoded. One msgspec decode of the first line both names the format and reads the record, so
    a webhook batch (one EventList on one line) is parsed once. A first line that is a single Event is
    decoded again by the line reader, so every event it yields is a plain ``_NativeRecord``.
    """
    stripped = first_line.strip()
    if stripped.startswith(b"[") or stripped == b"{":
        return None
    try:
        record = _first_record_decoder.decode(stripped)
    except msgspec.ValidationError:
        # Not an object, or an object the native schema rejects: decide the slow way, as the sniffer did.
        if _is_single_document(first_line):
            return None
        return _resolve_format(input_format, first_line), None
    except RECORD_ERRORS:  # not JSON: a broken record, rejected on its own when the lines are read
        return _resolve_format(input_format, first_line), None
    chosen = input_format or "auto"
    fmt = _format_from_keys(record) if chosen == "auto" else _resolve_format(chosen, first_line)
    return fmt, record if fmt == "native" and record.items is not None else None


def _resolve_format(input_format: str | None, sample: bytes) -> str:
    chosen = input_format or "auto"
    if chosen not in FORMATS:
        raise UnknownFormatError(f"unknown input format {chosen!r}; choose one of {', '.join(FORMATS)}")
    if chosen != "auto":
        return chosen
    return sniff_record_format(sample)


#: The largest read buffer :meth:`EventReader.read_bytes` gives a buffer (a larger one is read in pieces).
BYTES_BUFFER_MAX = 16 * 1024 * 1024


class EventReader:
    """Reads events from many inputs, stamping each with its cluster and logging rejects."""

    def __init__(self, *, input_format: str | None = None, cluster: str | None = None) -> None:
        if input_format is not None and input_format not in FORMATS:
            raise UnknownFormatError(
                f"unknown input format {input_format!r}; choose one of {', '.join(FORMATS)}"
            )
        self.input_format = input_format
        self.cluster = cluster
        self.rejects = RejectLog()
        self.records = 0

    # -- inputs ---------------------------------------------------------------------------------

    def read_paths(self, paths: Iterable[str]) -> Iterator[AuditEvent]:
        """Events from files, directories (recursively, sorted) and ``-`` for stdin."""
        for batch in self.read_path_batches(paths):
            yield from batch

    def read_path_batches(self, paths: Iterable[str]) -> Iterator[list[AuditEvent]]:
        """:meth:`read_paths` in lists (a block of lines each): the scan loop's way, one resume per block."""
        for path in paths:
            if path == "-":
                yield from self.read_stream_batches(sys.stdin.buffer, source="<stdin>")
                continue
            for file in expand_path(Path(path)):
                with file.open("rb") as stream:
                    yield from self.read_stream_batches(stream, source=str(file))

    def read_bytes(self, data: bytes, *, source: str = "<bytes>") -> Iterator[AuditEvent]:
        # Read through a buffer as large as the data (up to a bound) rather than the default 8 KiB: a webhook
        # EventList is one line of about 800 KB, and decoding it through the small buffer took 12 % longer.
        size = min(max(len(data), io.DEFAULT_BUFFER_SIZE), BYTES_BUFFER_MAX)
        yield from self.read_stream(io.BufferedReader(io.BytesIO(data), buffer_size=size), source=source)

    def read_stream(self, stream: BinaryIO, *, source: str) -> Iterator[AuditEvent]:
        for batch in self.read_stream_batches(stream, source=source):
            yield from batch

    def read_stream_batches(self, stream: BinaryIO, *, source: str) -> Iterator[list[AuditEvent]]:
        """Events of one stream in lists; a list may be empty (a block of blank or rejected lines)."""
        buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]
        if buffered.peek(2)[:2] == GZIP_MAGIC:  # type: ignore[attr-defined]
            buffered = io.BufferedReader(gzip.GzipFile(fileobj=buffered))  # type: ignore[arg-type]
        first, number = b"", 0
        while not first.strip():
            try:
                first = buffered.readline(MAX_RECORD_BYTES + 1)
            except STREAM_ERRORS as error:
                self.rejects.add(Reject(source, number + 1, f"unreadable input: {_reason(error)}"))
                return
            number += 1
            if not first:
                return
        layout = _lines_layout(first, self.input_format)
        if layout is None:
            yield list(self._read_document(first, buffered, source))
        else:
            fmt, first_record = layout
            yield from self._read_lines(first, number, buffered, source, fmt, first_record)

    # -- layouts --------------------------------------------------------------------------------

    def _read_lines(
        self,
        first: bytes,
        first_number: int,
        stream: BinaryIO,
        source: str,
        fmt: str,
        first_record: _NativeRecord | None = None,
    ) -> Iterator[list[AuditEvent]]:
        """Decode JSON Lines read in blocks: one C-level split per block, not a call per line.

        ``first_record`` is the first line already decoded (by :func:`_lines_layout`), used instead of
        decoding it again.
        """
        number = first_number - 1
        for block in _line_blocks(first, stream, self.rejects, source, first_number):
            if isinstance(block, int):  # an oversized line was rejected; keep the numbering right
                number = block
                continue
            if fmt == "native":
                yield self._native_lines(block, number, source, first_record)
                first_record = None
            else:
                yield list(self._envelope_lines(block, number, source, _DECODERS[fmt]))
            number += len(block)

    def _native_lines(
        self, lines: list[bytes], number: int, source: str, first_record: _NativeRecord | None = None
    ) -> list[AuditEvent]:
        """The hot path: API server output, decoded straight into AuditEvents.

        ``first_record``, when given, is the first non-blank line of ``lines`` already decoded.
        """
        cluster = self.cluster or "default"
        decode = _native_decoder.decode
        events: list[AuditEvent] = []
        append = events.append
        records = 0
        for line in lines:
            number += 1
            if not line or line.isspace():
                continue
            records += 1
            if first_record is not None:
                record, first_record = first_record, None
            else:
                try:
                    record = decode(line)
                except RECORD_ERRORS as error:
                    events.extend(self._salvage(line, source, number, error, cluster))
                    continue
            if record.items is not None:
                for event in record.items:
                    event.cluster = cluster
                    append(event)
            elif record.auditID or record.verb or record.requestURI:
                record.cluster = cluster
                append(record)
            else:
                self.rejects.add(Reject(source, number, "not an audit event: no auditID, verb or requestURI"))
        self.records += records
        return events

    def _envelope_lines(
        self, lines: list[bytes], number: int, source: str, decode: RecordDecoder
    ) -> Iterator[AuditEvent]:
        for line in lines:
            number += 1
            if not line or line.isspace():
                continue
            self.records += 1
            try:
                events, envelope_cluster = decode(line)
            except RECORD_ERRORS as error:
                self.rejects.add(Reject(source, number, _reason(error)))
                continue
            yield from self._stamp(events, envelope_cluster)

    def _read_document(self, first: bytes, stream: BinaryIO, source: str) -> Iterator[AuditEvent]:
        try:
            data = first + stream.read(MAX_RECORD_BYTES + 1 - len(first))
        except STREAM_ERRORS as error:
            self.rejects.add(Reject(source, 1, f"unreadable input: {_reason(error)}"))
            return
        if len(data) > MAX_RECORD_BYTES:
            self.rejects.add(Reject(source, 1, f"document larger than {MAX_RECORD_BYTES} bytes"))
            return
        self.records += 1
        try:
            fmt = _resolve_format(self.input_format, data)
            events, envelope_cluster = self._decode_document(data, fmt)
        except RECORD_ERRORS as error:
            if isinstance(error, UnknownFormatError):
                raise
            if fmt != "native":
                self.rejects.add(Reject(source, 1, _reason(error)))
                return
            yield from self._salvage(data, source, 1, error, self.cluster or "default")
            return
        yield from self._stamp(events, envelope_cluster)

    def _salvage(
        self, data: bytes, source: str, number: int, error: Exception, cluster: str
    ) -> Iterator[AuditEvent]:
        """The readable events of a list one of whose items failed; each bad item is its own reject."""
        salvaged = salvage_native(data)
        if salvaged is None or not salvaged[0]:
            # Nothing in it reads: the record is one reject, with the reason the whole decode gave.
            self.rejects.add(Reject(source, number, _reason(error)))
            return
        events, problems = salvaged
        for problem in problems:
            self.rejects.add(Reject(source, number, problem))
        for event in events:
            event.cluster = cluster
            yield event

    def _decode_document(self, data: bytes, fmt: str) -> tuple[list[AuditEvent], str]:
        if not data.lstrip().startswith(b"["):
            return _DECODERS[fmt](data)
        if fmt == "native":
            records = _native_array_decoder.decode(data)
            events: list[AuditEvent] = []
            for record in records:
                if record.items is not None:
                    events.extend(record.items)
                else:
                    _check_native(record)
                    events.append(record)
            return events, ""
        events, cluster = [], ""
        for item in orjson.loads(data):
            found, cluster_named = _DECODERS[fmt](orjson.dumps(item))
            events.extend(found)
            cluster = cluster or cluster_named
        return events, cluster

    def _stamp(self, events: list[AuditEvent], envelope_cluster: str) -> Iterator[AuditEvent]:
        cluster = self.cluster or envelope_cluster or "default"
        for event in events:
            event.cluster = cluster
            yield event


def _line_blocks(
    first: bytes, stream: BinaryIO, rejects: RejectLog, source: str, first_number: int
) -> Iterator[list[bytes] | int]:
    """Yield lists of complete lines, reading ``BLOCK_BYTES`` at a time.

    A line longer than ``MAX_RECORD_BYTES`` is rejected and skipped without being buffered whole; the
    line number after it is yielded (as an int) so the caller's numbering stays right.
    """
    pending = first
    #: The pieces of a line longer than a block, joined once when its end arrives (joining block by
    #: block would copy a long line once per block).
    held: list[bytes] = []
    held_bytes = 0
    number = first_number - 1  # lines handed out so far
    skipping = False
    while True:
        try:
            chunk = stream.read(BLOCK_BYTES)
        except STREAM_ERRORS as error:
            # A truncated or corrupt gzip: the lines before the damage stand, the rest is one reject.
            rejects.add(Reject(source, number + 1, f"unreadable input: {_reason(error)}"))
            if held:
                pending = b"".join(held)
            if pending and not skipping:
                yield [pending]
            return
        if held and chunk and b"\n" not in chunk:
            held.append(chunk)
            held_bytes += len(chunk)
            if held_bytes > MAX_RECORD_BYTES:
                rejects.add(Reject(source, number + 1, f"line longer than {MAX_RECORD_BYTES} bytes"))
                held, held_bytes, skipping = [], 0, True
            continue
        if held:
            pending, held, held_bytes = b"".join(held), [], 0
        if pending and not skipping and b"\n" in chunk and b"\n" not in pending:
            # The usual case: the previous read's partial line ends in this one (``first``, what the caller
            # read ahead, may hold whole lines: those take the general path). Only that line is joined;
            # joining the whole block (``pending + chunk``) copied every block once more, 2-3% of a scan.
            # BytesIO finds line ends with memchr (bytes.split(b"\n") tests byte by byte).
            lines = io.BytesIO(chunk).readlines()
            lines[0] = pending + lines[0]
            pending = b"" if chunk.endswith(b"\n") else lines.pop()
            yield _checked_lines(lines, number, rejects, source)
            number += len(lines)
            continue
        data = pending + chunk if pending else chunk
        if not chunk:
            if data and not skipping:
                yield [data]
            return
        cut = data.rfind(b"\n") + 1
        if skipping:
            if cut == 0:
                pending = b""
                continue
            number += 1
            yield number
            data, cut, skipping = data[data.find(b"\n") + 1 :], cut - data.find(b"\n") - 1, False
        if cut == 0:
            pending = b""
            if len(data) > MAX_RECORD_BYTES:
                rejects.add(Reject(source, number + 1, f"line longer than {MAX_RECORD_BYTES} bytes"))
                skipping = True
            else:
                held, held_bytes = [data], len(data)
            continue
        # BytesIO finds line ends with memchr; bytes.split(b"\n") tests byte by byte, and cost a scan more
        # than a tenth of its decoding. Lines keep their "\n", which JSON reads as whitespace.
        lines = io.BytesIO(data).readlines()
        pending = b"" if cut == len(data) else lines.pop()
        yield _checked_lines(lines, number, rejects, source)
        number += len(lines)


def _checked_lines(lines: list[bytes], number: int, rejects: RejectLog, source: str) -> list[bytes]:
    """``lines`` (the first is line ``number + 1``), each line too long to be a record rejected and emptied."""
    if max(map(len, lines)) > MAX_RECORD_BYTES + 1:
        for index, line in enumerate(lines):
            if len(line) > MAX_RECORD_BYTES + 1:
                rejects.add(Reject(source, number + index + 1, f"line longer than {MAX_RECORD_BYTES} bytes"))
                lines[index] = b""
    return lines


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


#: In a directory, the files that can hold audit logs; a file named on its own is always read.
LOG_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".log", ".gz"})


def _is_log_file(path: Path, root: Path) -> bool:
    if any(part.startswith(".") for part in path.relative_to(root).parts):
        return False
    return path.suffix in LOG_SUFFIXES or "audit" in path.name


def expand_path(path: Path) -> list[Path]:
    """A file is itself; a directory is every log-like, non-hidden file below it, in name order."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and _is_log_file(p, path))
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    return [path]


def decode_bytes(
    data: bytes, *, source: str = "<bytes>", cluster: str | None = None, input_format: str | None = None
) -> DecodeResult:
    """Decode one buffer (a request body, a test fixture) completely."""
    reader = EventReader(input_format=input_format, cluster=cluster)
    events = list(reader.read_bytes(data, source=source))
    return DecodeResult(events=events, rejects=list(reader.rejects.kept))
