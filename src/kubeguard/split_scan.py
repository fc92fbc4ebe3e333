"""``kubeguard scan`` of a large file on every core: decoding in parallel, judging in order.

A scan's answer depends on the order of events (de-duplication, trackers, first-seen images, the anomaly
baselines), so events cannot be dealt out to workers that each judge their share. But most of a scan's
cost does not depend on order: reading and decoding each line, the stage filter, the timestamp check,
deciding what a request did and where it is routed, and running the detectors that declare themselves
``stateless`` (they read only the event and the threat intelligence: the callers, most signatures). So:

* **Mappers** (forked children, two by default) each take every other 1 MiB chunk of the file (chunks
  start at line starts). For each event they do the order-free work above and send the reducer a compact
  record: its stage class, auditID and de-duplication kind, the findings its stateless detectors raised
  (built, with each detector's position in the registry), and either the anomaly learner's counting key
  (principal and action, interned) or, when an order-dependent detector wants the event, the event
  itself, re-encoded, with what the reducer is to do with it: the facts prepared for it (the trackers'
  and the learner's) and which detectors to run (those whose ``relevant`` test says yes).
* **The reducer** (the parent) takes the chunks in file order and does, event by event, exactly what the
  one-process pipeline does in order: counts stages, de-duplicates, counts the event into the baselines,
  runs the order-dependent detectors on the events that have them (decoding an event only when one of
  them still has work: the anomaly detectors skip a cluster's learning period), and merges their
  findings with the stateless ones by registry position. Rejects come back with chunk line numbers,
  offset to file lines.

The stateless findings of an event that turns out to be a duplicate are simply dropped, as if never made.
Everything order-dependent happens in the reducer in file order, so the findings, stats, rejects and
detector error counts are the one-process scan's. Stdin, gzip, other formats, several files, small files,
``--state``, ``--db`` (observers), live sources and Sigma rules that read later stages run in one process
(:func:`split_plan` says no); a mapper that fails makes the caller run the scan again in one process.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import select
import signal
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from kubeguard.audit.decode import (
    GZIP_MAGIC,
    MAX_RECORD_BYTES,
    EventReader,
    Reject,
    RejectLog,
    _line_blocks,
    _lines_layout,
    expand_path,
)
from kubeguard.audit.event import CONNECT_SUBRESOURCES, AuditEvent
from kubeguard.detectors.anomaly.baselines import Observation, pending_key
from kubeguard.detectors.anomaly.detectors import BODY_RESOURCES, AnomalyLearner, _body_values
from kubeguard.detectors.anomaly.features import seconds_of
from kubeguard.detectors.base import (
    ANONYMOUS_CALLER,
    ANONYMOUS_USER,
    IMPERSONATING_CALLER,
    UNAUTHENTICATED_GROUP,
    WITH_INTEL,
)
from kubeguard.detectors.effect import SWITCHING_PROTOCOLS, Outcome, is_dry_run, outcome
from kubeguard.pipeline import FindingSet, Pipeline, readable_time

log = logging.getLogger(__name__)

#: Below this many bytes a file is scanned in one process: forking costs more than it saves.
MIN_SPLIT_BYTES = 16 * 1024 * 1024
#: How much of the file one mapper decodes at a time (about 600 API-server events).
CHUNK_BYTES = 1024 * 1024
#: Decoding processes. With the reducer that makes one more process than a two-core machine has cores;
#: the mappers block on their pipes whenever the reducer falls behind, so the three share the cores.
MAPPERS = 2
#: ``KUBEGUARD_SCAN_PROCESSES=1`` keeps every scan in one process; ``=split`` splits a file of any size
#: (switches for debugging and benchmarks).
PROCESSES_ENV = "KUBEGUARD_SCAN_PROCESSES"

#: Allocations between the collector's young-generation passes while a split scan runs (Python's default is
#: 700). Each chunk result the reducer unpickles is thousands of new containers, almost all acyclic and
#: either soon freed or kept for the whole scan: at 700 a pass ran about once a chunk and walked them all
#: again, with every tenth pass and two full ones walking the survivors; at 20,000 the reducer's collector
#: time on 200k lab events fell from 0.066 s to 0.017 s CPU.
GC_THRESHOLD = 20_000

#: Distinct (principal) owners and actions a mapper interns before it starts its tables again (memory stays
#: bounded on a file of any size; each table entry is sent once per table).
MAX_INTERNED = 200_000

# What a special event is (see :meth:`Mapper.map_chunk`). FOLDED: its learning is summed in the segment.
COUNT_ONLY, LEARN, WHOLE, FOLDED = range(4)

_encode = msgspec.json.encode
_event_decoder = msgspec.json.Decoder(AuditEvent)
_FRAME = struct.Struct("<Q")
APPLIED, DRY_RUN, FAILED = Outcome.APPLIED, Outcome.DRY_RUN, Outcome.FAILED


@dataclass(slots=True)
class SplitPlan:
    path: Path
    source: str
    size: int
    chunks: int


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """The garbage collector as a split scan wants it, restored after.

    What exists now (modules, the pipeline, intel) lives for the whole scan: frozen before the fork, as in
    the one-process scan, the full passes of the reducer stop walking it, and the mappers' stop walking
    (and so copying, page by page) the heap they inherit. Young-generation passes run every
    :data:`GC_THRESHOLD` allocations instead of every 700.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def split_plan(
    paths: list[str] | tuple[str, ...],
    pipeline: Pipeline,
    input_format: str | None,
    *,
    min_bytes: int,
) -> SplitPlan | None:
    """How to split this scan, or None when it must run in one process.

    A busy machine is no reason to stay in one process any more: the split spends about the CPU the
    one-process scan does (lab log, 200k events: 1.28 s against 1.27 s), and with two other processes
    keeping both cores busy it still finished in 2.7-3.4 s against 4.1-5.0 s, its three processes taking
    a larger share of the machine."""
    if not hasattr(os, "fork") or os.environ.get(PROCESSES_ENV) == "1" or usable_cores() < 2:
        return None
    if os.environ.get(PROCESSES_ENV) == "split":
        min_bytes = 0
    if pipeline.observers or pipeline.later_stage_detectors or len(paths) != 1 or paths[0] == "-":
        return None
    try:
        files = expand_path(Path(paths[0]))
        if len(files) != 1 or not files[0].is_file():
            return None
        path = files[0]
        size = path.stat().st_size
        if size < max(min_bytes, 1):
            return None
        with path.open("rb") as stream:
            if stream.read(2) == GZIP_MAGIC:
                return None
            stream.seek(0)
            first = b""
            while not first.strip():
                first = stream.readline(MAX_RECORD_BYTES + 1)
                if not first:
                    return None
    except OSError:  # missing or unreadable: the one-process scan reports it as the user expects
        return None
    if len(first) > MAX_RECORD_BYTES:
        return None
    layout = _lines_layout(first, input_format)
    if layout is None or layout[0] != "native":
        return None
    return SplitPlan(path=path, source=str(path), size=size, chunks=-(-size // CHUNK_BYTES))


# -- mapping ------------------------------------------------------------------------------------------


class _Range:
    """A read-only window [start, end) of a file descriptor, read with ``pread``."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.position, self.end = fd, start, end

    def read(self, size: int = -1) -> bytes:
        left = self.end - self.position
        if size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        data = os.pread(self.fd, size, self.position)
        self.position += len(data)
        return data


def chunk_start(fd: int, index: int, size: int) -> int:
    """Where chunk ``index`` starts: the first line start at or after ``index * CHUNK_BYTES``."""
    if index == 0:
        return 0
    position = index * CHUNK_BYTES - 1
    while position < size:
        block = os.pread(fd, 64 * 1024, position)
        if not block:
            break
        cut = block.find(b"\n")
        if cut >= 0:
            return position + cut + 1
        position += len(block)
    return size


class Mapper:
    """The order-free half of the pipeline, for one process's chunks."""

    def __init__(self, pipeline: Pipeline, reader: EventReader) -> None:
        self.pipeline = pipeline
        self.reader = reader
        engine = pipeline.engine
        self.positions = {id(d): i for i, d in enumerate(engine.detectors)}
        self.learns = pipeline.baselines is not None
        self._plans: dict[tuple[Any, ...], tuple[tuple[Any, ...], bool, bool]] = {}
        self._owners: dict[Any, int] = {}
        self._actions: dict[Any, int] = {}
        #: What :func:`pending_key` reads of an event (all but the time) → its interned (owner, action) ids.
        self._pairs: dict[tuple[Any, ...], tuple[int, int]] = {}

    def _plan(self, key: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...], bool, tuple[Any, ...]]:
        """For one route: its ungated stateless detectors as (position, name, detect); its order-dependent
        ones (see :meth:`_facts` and :meth:`_calls`), or () when it has none but the learner; whether the
        learner counts the event; its stateless detectors behind the anonymous and the impersonating
        caller gates, as the first."""
        route = self.pipeline.engine.route(*key)
        # Stateless detectors by their caller gate (``only_for``): those behind a closed gate are called only
        # when the mapper's inline test opens it; behind WITH_INTEL and no intel loaded (a scan's intel
        # does not change), never.
        gated: dict[str | None, list[tuple[int, str, Any]]] = {None: [], ANONYMOUS_CALLER: [], IMPERSONATING_CALLER: []}
        intel = self.pipeline.engine.context.intel
        for d in route:
            if not getattr(d, "stateless", False):
                continue
            gate = getattr(d, "only_for", None)
            if gate == WITH_INTEL:
                if intel is None:
                    continue
                gate = None
            gated.get(gate, gated[None]).append((self.positions[id(d)], d.name, d.detect))
        stateless = tuple(gated[None])
        gates = (tuple(gated[ANONYMOUS_CALLER]), tuple(gated[IMPERSONATING_CALLER]))
        learner = self.learns and any(isinstance(d, AnomalyLearner) for d in route)
        # The ``relevant`` tests come first, each once (the anomaly detectors share one): when one says yes
        # the event goes whole to the reducer, and reading bodies for the ``prepare`` steps would be wasted.
        tests: list[Any] = []
        prepares: list[Any] = []
        # Every order-dependent detector in route order, the learner included: (position, relevant, prepare).
        steps: list[tuple[int, Any, Any]] = []
        always = False  # a detector with neither: every event of the route goes whole
        for d in route:
            if getattr(d, "stateless", False):
                continue
            position = self.positions[id(d)]
            if isinstance(d, AnomalyLearner):
                # Sent whole, an event is learned from what the learner prepared here (its pending key and
                # body values), as a LEARN step is, instead of from the event in the reducer.
                steps.append((position, None, d.prepare if self.learns else None))
                continue
            if hasattr(d, "prepare") and hasattr(d, "apply") and not d.finding_types:
                prepares.append((position, d.prepare))
                steps.append((position, None, d.prepare))
            elif hasattr(d, "relevant"):
                if all(d.relevant != test for _, test in tests):
                    tests.append((None, d.relevant))
                steps.append((position, d.relevant, None))
            else:
                always = True
                steps.append((position, None, None))
        checks = (None,) if always else (*tests, *prepares)
        ordered = (checks, tuple(steps)) if checks else ()
        plan = self._plans[key] = (stateless, ordered, learner, gates)
        return plan

    @staticmethod
    def _facts(event: AuditEvent, ordered: tuple[Any, ...]) -> list[tuple[int, Any]] | None:
        """What the order-dependent detectors need recorded, or None when one needs the event itself."""
        facts: list[tuple[int, Any]] = []
        for step in ordered[0]:
            if step is None:
                return None
            position, read = step
            try:
                fact = read(event)
            except Exception:  # noqa: BLE001 - the reducer runs the detector itself and counts the error
                return None
            if position is None:
                if fact:
                    return None
            elif fact is not None:
                facts.append((position, fact))
        return facts

    @staticmethod
    def _calls(
        event: AuditEvent, ordered: tuple[Any, ...], stamp: str
    ) -> tuple[str, str, list[tuple[int, Any]]] | None:
        """For an event sent whole: what the reducer does with it, in route order. ``(position, None)``: run
        the detector on the event; ``(position, fact)``: apply a prepared fact. A detector whose ``relevant``
        says no, or whose ``prepare`` has nothing to record, is left out. None: run the whole route (the
        reducer works out the route itself, as when the event has no order-dependent detector but the
        learner, whose body could not be read here).

        A detector left out is one whose ``detect`` would find and change nothing, so the reducer runs what
        :meth:`Engine.detect` runs to any effect (lab log, 200k events: 3,366 workload events each ran five
        detectors in the reducer, most of which read the body only to find nothing to say). The event's
        cluster and time (``stamp``, the event's) come first: what a detector's ``learning`` test reads in
        the reducer, before the event is decoded (see :func:`_called`)."""
        if not ordered:
            return None
        calls: list[tuple[int, Any]] = []
        for position, relevant, prepare in ordered[1]:
            if prepare is not None:
                try:
                    fact = prepare(event)
                except Exception:  # noqa: BLE001 - the reducer runs the detector itself and counts the error
                    fact = None
                    calls.append((position, None))
                if fact is not None:
                    calls.append((position, fact))
                continue
            if relevant is not None:
                try:
                    wanted = relevant(event)
                except Exception:  # noqa: BLE001 - as above
                    wanted = True
                if not wanted:
                    continue
            calls.append((position, None))
        return event.cluster, stamp, calls

    def map_chunk(self, stream: BinaryIO, source: str) -> tuple[Any, ...]:
        """The chunk's events reduced to what the reducer needs, in order (see :func:`reduce_chunks`).

        Every counted event leaves its de-duplication key; the learner's counting of plain events is summed
        per interned (principal, action) into a segment. An event with stateless findings or prepared facts
        is sent on its own (FOLDED) while its learning is summed in the segment; each other special event (a
        body to learn, a connection's stage, or wanted whole by an order-dependent detector) ends the segment
        before it and is sent on its own with its learning.
        """
        reader = self.reader
        # The interned keys are bounded: past the limit both ends start their tables again.
        fresh = len(self._owners) + len(self._actions) > MAX_INTERNED or len(self._pairs) > MAX_INTERNED
        if fresh:
            self._owners, self._actions, self._pairs = {}, {}, {}
        reader.rejects, reader.records = RejectLog(), 0
        unreadable: list[tuple[str, str]] = []
        # De-duplication keys: every counted event's auditID, in order, and its kind only where it is not
        # ResponseComplete (most events): no tuple per event, and no stage string pickled per event.
        audit_ids: list[str] = []
        kinds: dict[int, str] = {}
        steps: list[Any] = []
        segment: dict[tuple[int, int], list[Any]] = {}
        new_owners: list[Any] = []
        new_actions: list[Any] = []
        plans, plan_of = self._plans, self._plan
        owner_ids, action_ids, pair_ids = self._owners, self._actions, self._pairs
        context = self.pipeline.engine.context
        build = self.pipeline.builder.build
        empty_ids = False
        other_stages = 0
        events_seen = 0
        number = 0
        for block in _line_blocks(b"", stream, reader.rejects, source, 1):
            if isinstance(block, int):
                number = block
                continue
            events = reader._native_lines(block, number, source)
            number += len(block)
            events_seen += len(events)
            for event in events:
                stage = event.stage
                ref = event.objectRef
                connect = ref is not None and ref.subresource in CONNECT_SUBRESOURCES
                if stage != "ResponseComplete" and stage and not (connect and stage == "ResponseStarted"):
                    other_stages += 1
                    continue
                stamp = event.stageTimestamp or event.requestReceivedTimestamp or event.timestamp
                if not (
                    len(stamp) >= 24 and stamp[19] == "." and stamp[-1] == "Z" and stamp[4] == "-"
                    and stamp[10] == "T" and stamp[:4].isdigit()
                ) and not readable_time(stamp):
                    unreadable.append((event.auditID, stamp[:64]))
                    continue
                # outcome(event), inlined (it runs for every counted event) and sharing the status code with
                # the connection's de-duplication kind; it must say what outcome says.
                status = event.responseStatus
                code = status.code if status is not None else 0
                if connect:
                    kind = "connect:101" if code == SWITCHING_PROTOCOLS else "connect"
                    result = APPLIED if code == SWITCHING_PROTOCOLS else FAILED
                else:
                    kind = stage
                    if not (200 <= code < 300 or code == SWITCHING_PROTOCOLS):
                        result = FAILED
                    elif "dryRun=" in event.requestURI and is_dry_run(event):
                        result = DRY_RUN
                    else:
                        result = APPLIED
                audit_id = event.auditID
                if not audit_id:
                    empty_ids = True
                position = len(audit_ids)
                audit_ids.append(audit_id)
                if kind != "ResponseComplete":
                    kinds[position] = kind
                key = (event.verb, ref.resource, ref.subresource, result) if ref is not None else (
                    event.verb, "", "", result)
                plan = plans.get(key)
                if plan is None:
                    plan = plan_of(key)
                stateless, ordered, learner, (anonymous, impersonating) = plan
                user = event.user
                # The caller gates, inlined (gate_open says what they test): a gated detector runs only
                # when its gate is open, which is seldom.
                if anonymous and (user.username == ANONYMOUS_USER or UNAUTHENTICATED_GROUP in user.groups):
                    stateless = stateless + anonymous
                if impersonating and event.impersonatedUser is not None:
                    stateless = stateless + impersonating
                found = None
                if stateless:
                    # The lists are made when first needed: almost every event has neither.
                    detections: list[tuple[int, Any]] | None = None
                    failed: list[str] | None = None
                    for detector_position, name, detect in stateless:
                        try:
                            out = detect(event, context)
                            if out:
                                if detections is None:
                                    detections = []
                                for detection in out:
                                    detections.append((detector_position, detection))
                        except Exception:  # noqa: BLE001 - counted by the reducer
                            if failed is None:
                                failed = []
                            failed.append(name)
                    if detections or failed:
                        detections = detections or []
                        try:
                            built = [(p, build(d)) for p, d in detections]
                            unbuilt = False
                        except Exception:  # noqa: BLE001 - the reducer drops the event's findings
                            built, unbuilt = [], True
                        found = (built, failed or [], unbuilt, len(detections))
                facts = self._facts(event, ordered) if ordered else None
                whole = ordered and facts is None
                body = None
                if not whole and learner and ref is not None and ref.resource in BODY_RESOURCES:
                    try:
                        body = _body_values(event)
                    except Exception:  # noqa: BLE001 - the reducer runs the learner itself and counts the error
                        whole = True
                if whole:
                    step: tuple[Any, ...] = (position, WHOLE, found, _encode(event), self._calls(event, ordered, stamp))
                elif learner:
                    # Interned by what pending_key reads (the cluster is the reader's, the time is ``stamp``):
                    # one lookup instead of building and hashing its owner and action, and of reading the
                    # principal out of user.extra, for every event.
                    ips = event.sourceIPs
                    pair_key = (
                        user.username, bytes(user.extra) if user.extra else b"", event.verb,
                        ref.resource, ref.subresource, ref.namespace, "", ips[0] if ips else "", event.userAgent,
                    ) if ref is not None and ref.resource else (
                        user.username, bytes(user.extra) if user.extra else b"", event.verb, "", "",
                        ref.namespace if ref is not None else "", event.requestURI, ips[0] if ips else "",
                        event.userAgent,
                    )
                    pair = pair_ids.get(pair_key)
                    if pair is None:
                        owner, action, _ = pending_key(event)
                        owner_id = owner_ids.get(owner)
                        if owner_id is None:
                            owner_id = owner_ids[owner] = len(owner_ids)
                            new_owners.append(owner)
                        action_id = action_ids.get(action)
                        if action_id is None:
                            action_id = action_ids[action] = len(action_ids)
                            new_actions.append(action)
                        pair = pair_ids[pair_key] = (owner_id, action_id)
                    if body is None and not connect:
                        # fold_span(segment, pair, 1, stamp, stamp), inlined: it runs for almost every event.
                        span = segment.get(pair)
                        if span is None:
                            segment[pair] = [1, stamp, stamp]
                        else:
                            span[0] += 1
                            if stamp < span[1]:
                                span[1] = stamp
                            elif stamp > span[2]:
                                span[2] = stamp
                        if found is None and not facts:
                            continue
                        # Stateless findings and prepared facts touch neither the pending tables nor the
                        # profiles (an ``apply`` records into its detector's state), so the event's learning
                        # is summed with the plain events' and the segment goes on: its rows still reach the
                        # pending tables in first-seen order, before any event that reads them (sent whole).
                        steps.append((position, FOLDED, found, facts, None, None))
                        continue
                    step = (position, LEARN, found, facts, body, (*pair, stamp))
                elif found is None and not facts and not connect:
                    continue
                else:
                    step = (position, COUNT_ONLY, found, facts, None, None)
                if segment:
                    steps.append(segment)
                    segment = {}
                steps.append(step)
        if segment:
            steps.append(segment)
        rejects = [(r.line, r.reason) for r in reader.rejects.kept]
        # The most pending keys the reducer can add for this chunk: a row or a special event adds one at most.
        new_keys = sum(len(step) if type(step) is dict else 1 for step in steps)
        return (events_seen, other_stages, unreadable, audit_ids, kinds, empty_ids, steps, new_keys, fresh, new_owners,
                new_actions, reader.rejects.count, rejects, reader.records, number)


def _run_mapper(mapper: Mapper, plan: SplitPlan, first: int, write: Callable[[bytes], Any]) -> None:
    fd = os.open(plan.path, os.O_RDONLY)
    try:
        for index in range(first, plan.chunks, MAPPERS):
            start, end = chunk_start(fd, index, plan.size), chunk_start(fd, index + 1, plan.size)
            payload = pickle.dumps(mapper.map_chunk(_Range(fd, start, end), plan.source),  # type: ignore[arg-type]
                                   protocol=pickle.HIGHEST_PROTOCOL)
            write(_FRAME.pack(len(payload)) + payload)
    finally:
        os.close(fd)


#: How much a mapper may have written that the reducer has not read yet: several chunks' results, so that
#: a mapper runs ahead while the reducer waits on the other one's chunk (a 64 KiB pipe held less than one,
#: and a mapper that had finished its chunk sat blocked, its core idle).
PIPE_BYTES = 1024 * 1024


def _widen(fd: int) -> None:
    """Grow a pipe's buffer to :data:`PIPE_BYTES` where the system allows (Linux); else leave it."""
    with contextlib.suppress(AttributeError, OSError):
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def start_mappers(pipeline: Pipeline, reader_options: dict[str, Any], plan: SplitPlan) -> list[tuple[int, BinaryIO]]:
    """Fork the mappers; each is (pid, the read end of its pipe)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    started: list[tuple[int, BinaryIO]] = []
    for first in range(MAPPERS):
        read_end, write_end = os.pipe()
        _widen(write_end)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; its output is what the tests compare
            status = 1
            try:
                os.close(read_end)
                for _, other in started:
                    other.close()
                logging.disable(logging.CRITICAL)  # the reducer reports what counts, once
                with os.fdopen(write_end, "wb") as out:
                    _run_mapper(Mapper(pipeline, EventReader(**reader_options)), plan, first, out.write)
                status = 0
            except BaseException:  # noqa: BLE001, S110 - the reducer sees a short stream and scans in one process
                pass
            finally:
                os._exit(status)
        os.close(write_end)
        started.append((pid, os.fdopen(read_end, "rb")))
    return started


def stop_mappers(mappers: list[tuple[int, BinaryIO]], *, kill: bool) -> bool:
    """Reap the mappers; True when every one exited cleanly."""
    clean = True
    for pid, stream in mappers:
        if kill:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        stream.close()
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 1
        clean = clean and status == 0
    return clean


class MapperFailed(RuntimeError):
    """A mapper's stream ended early: the scan is run again in one process."""


#: How much of a mapper's output the reducer holds, read ahead of the chunk it is on, before it stops
#: reading that mapper (which then blocks on its pipe). Without it a mapper that ran ahead blocked once its
#: pipe (about six chunks' results) was full, while the reducer waited on the other one: one core idle
#: (200k lab events: each mapper sat blocked 0.1-0.2 s). 16 MiB is about a hundred chunks of lead; each
#: mapper's whole output for 200k lab events is 22-24 MB, so the bound matters only on larger files.
READ_AHEAD_BYTES = 16 * 1024 * 1024


class _Frames:
    """One mapper's pipe as a queue of length-prefixed frames, filled as the pipe has data."""

    def __init__(self, stream: BinaryIO) -> None:
        self.fd = stream.fileno()
        self.data = bytearray()
        self.ended = False

    def fill(self) -> None:
        """Read what the pipe holds now (called when select says it is readable: never blocks long)."""
        block = os.read(self.fd, PIPE_BYTES)
        if block:
            self.data += block
        else:
            self.ended = True

    def take(self) -> bytearray | None:
        """The next whole frame's payload (one copy out of the buffer), or None until it has all arrived."""
        data = self.data
        if len(data) < _FRAME.size:
            return None
        (length,) = _FRAME.unpack_from(data)
        end = _FRAME.size + length
        if len(data) < end:
            return None
        payload = data[_FRAME.size : end]
        del data[:end]  # a bytearray drops its front without moving the rest
        return payload


def chunk_results(mappers: list[tuple[int, BinaryIO]], plan: SplitPlan) -> Iterator[tuple[Any, ...]]:
    """The mappers' chunk results in file order. While the reducer waits for one mapper's next chunk it
    keeps reading the others' pipes into memory (up to :data:`READ_AHEAD_BYTES` each), so a mapper that
    runs ahead keeps running."""
    pipes = [_Frames(stream) for _, stream in mappers]
    for index in range(plan.chunks):
        wanted = pipes[index % MAPPERS]
        while (payload := wanted.take()) is None:
            if wanted.ended:
                where = "inside" if wanted.data else "before"
                raise MapperFailed(f"mapper {index % MAPPERS} stopped {where} chunk {index}")
            readable = [p for p in pipes if not p.ended and (p is wanted or len(p.data) < READ_AHEAD_BYTES)]
            ready, _, _ = select.select([p.fd for p in readable], [], [])
            for pipe in readable:
                if pipe.fd in ready:
                    pipe.fill()
        yield pickle.loads(payload)  # noqa: S301 - our own child's output, through our own pipe


# -- reducing -----------------------------------------------------------------------------------------


def reduce_chunks(
    pipeline: Pipeline,
    reader: EventReader,
    plan: SplitPlan,
    chunks: Iterator[tuple[Any, ...]],
    findings: FindingSet,
    *,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = 5000,
) -> int:
    """Judge the mapped events in file order, as :meth:`Pipeline.process_event` does; returns the count.

    A chunk is taken in bulk when its duplicates, if any, are among its special events (an exec's two
    stages are one occurrence, so connections are always special): its keys enter the window at once and
    its plain events' learning arrives already summed. A chunk with another duplicate, an event without an
    auditID, or more new learning keys than the pending tables may take before a flush, is read again here
    and run through the one-process pipeline event by event.
    """
    stats = pipeline.stats
    engine = pipeline.engine
    context = engine.context
    errors = engine.errors
    window = pipeline.recent
    baselines = pipeline.baselines
    build = pipeline.builder.build
    add = findings.add
    detectors = engine.detectors
    positions = {id(d): i for i, d in enumerate(detectors)}
    learning = [getattr(d, "learning", None) for d in detectors]
    cluster = reader.cluster or "default"
    owner_tables: list[list[Any]] = [[] for _ in range(MAPPERS)]
    action_tables: list[list[Any]] = [[] for _ in range(MAPPERS)]
    line_offset = 0
    count = 0
    for chunk_index, chunk in enumerate(chunks):
        (events, other_stages, unreadable, audit_ids, kinds, empty_ids, steps, new_keys, fresh, new_owners,
         new_actions, reject_count, rejects, records, lines) = chunk
        for line, reason in rejects:
            reader.rejects.add(Reject(plan.source, line + line_offset, reason))
        reader.rejects.count += reject_count - len(rejects)
        reader.records += records
        line_offset += lines
        owner_table = owner_tables[chunk_index % MAPPERS]
        action_table = action_tables[chunk_index % MAPPERS]
        if fresh:
            owner_table.clear()
            action_table.clear()
        owner_table.extend(new_owners)
        action_table.extend(new_actions)
        duplicates = None
        if not empty_ids and (baselines is None or baselines.pending_room() > new_keys):
            keys = _keys(audit_ids, kinds)
            duplicates = window.duplicates(cluster, keys)
            if duplicates and not duplicates.issubset(
                step[0] for step in steps if type(step) is tuple and step[1] != FOLDED
            ):
                duplicates = None  # a duplicate was summed with the plain events: judge them one by one
        if duplicates is not None:
            window.count_many(cluster, keys, duplicates)
            stats.events += events
            stats.other_stages += other_stages
            stats.duplicates += len(duplicates)
            stats.counted += len(audit_ids) - len(duplicates)
            stats.rejected += len(unreadable)
            for audit_id, stamp in unreadable:
                log.warning("audit event %s skipped: unreadable timestamp %r", audit_id, stamp)
            for step in steps:
                if type(step) is dict:
                    baselines.memo = None  # type: ignore[union-attr]
                    baselines.defer_rows(owner_table, action_table, step)  # type: ignore[union-attr]
                    continue
                if duplicates and step[0] in duplicates:
                    continue
                audit_id = audit_ids[step[0]]
                if step[1] == WHOLE:
                    calls = step[4]
                    _finish(stats, errors, add, build, step[2],
                            _ordered_detections(_event_decoder.decode(step[3]), engine, context, positions, errors)
                            if calls is None else _called(step[3], calls, detectors, learning, context, errors),
                            audit_id)
                    continue
                _, _, found, facts, body, learned = step
                if facts:
                    for position, fact in facts:
                        detectors[position].apply(fact, context)
                if learned is not None:
                    owner_id, action_id, when = learned
                    owner = owner_table[owner_id]
                    baselines.memo = None  # type: ignore[union-attr]
                    baselines.defer_key(owner, action_table[action_id], when)  # type: ignore[union-attr]
                    if body is not None:
                        baselines.learn(  # type: ignore[union-attr]
                            Observation(owner[0], owner[1], seconds_of(when), {}), body, times=0)
                if found is not None:
                    _finish(stats, errors, add, build, found, [], audit_id)
        else:
            _rescan_chunk(pipeline, plan, chunk_index, reader.cluster, add)
        before, count = count, count + events
        if progress is not None and before // progress_every != count // progress_every:
            progress(count, len(findings))
    if progress is not None:
        progress(count, len(findings))
    return count


def _keys(audit_ids: list[str], kinds: dict[int, str]) -> list[tuple[str, str]]:
    """A chunk's de-duplication keys, ``(auditID, kind)`` in order, from what its mapper sent."""
    every = ["ResponseComplete"] * len(audit_ids)
    for position, kind in kinds.items():
        every[position] = kind
    return list(zip(audit_ids, every, strict=True))


def _rescan_chunk(
    pipeline: Pipeline, plan: SplitPlan, index: int, cluster: str | None, add: Callable[[dict[str, Any]], None]
) -> None:
    """Run chunk ``index`` through the one-process pipeline, event by event (what its mapper made of it is
    dropped, but for its rejects and line count, which the caller has already taken)."""
    reader = EventReader(cluster=cluster)
    process = pipeline.process_event
    fd = os.open(plan.path, os.O_RDONLY)
    try:
        start, end = chunk_start(fd, index, plan.size), chunk_start(fd, index + 1, plan.size)
        number = 0
        for block in _line_blocks(b"", _Range(fd, start, end), reader.rejects, plan.source, 1):  # type: ignore[arg-type]
            if isinstance(block, int):
                number = block
                continue
            for event in reader._native_lines(block, number, plan.source):
                for finding in process(event):
                    add(finding)
            number += len(block)
    finally:
        os.close(fd)


def _ordered_detections(
    event: AuditEvent, engine: Any, context: Any, positions: dict[int, int], errors: Any
) -> list[tuple[int, Any]]:
    """The order-dependent detectors of ``event``'s route, run as :meth:`Engine.detect` runs them."""
    ref = event.objectRef
    result = outcome(event)
    key = (event.verb, ref.resource, ref.subresource, result) if ref is not None else (event.verb, "", "", result)
    detections: list[tuple[int, Any]] = []
    for detector in engine.route(*key):
        if getattr(detector, "stateless", False):
            continue
        _detect(detector, positions[id(detector)], event, context, errors, detections)
    return detections


def _detect(detector: Any, position: int, event: AuditEvent, context: Any, errors: Any,
            detections: list[tuple[int, Any]]) -> None:
    """Run one detector on ``event`` as :meth:`Engine.detect` does, adding its detections at ``position``."""
    try:
        out = detector.detect(event, context)
        if out:
            for detection in out:
                detections.append((position, detection))
    except Exception:  # noqa: BLE001 - a broken detector is reported, not fatal
        errors[detector.name] += 1
        log.exception("detector %s failed on audit event %s", detector.name, event.auditID)


def _called(
    encoded: bytes,
    calls: tuple[str, str, list[tuple[int, Any]]],
    detectors: list[Any],
    learning: list[Any],
    context: Any,
    errors: Any,
) -> list[tuple[int, Any]]:
    """What :meth:`Mapper._calls` said to do with an event sent whole, in route order: apply each prepared
    fact, run each detector that may find or record something, as :meth:`Engine.detect` runs them.

    The event is decoded only for a detector that runs: one with a ``learning`` test (the anomaly
    detectors) is skipped, undecoded, while that test says its ``detect`` returns nothing at once. Asked
    in turn, each test sees what the detectors before it changed, as the detector itself would."""
    cluster, stamp, steps = calls
    event = None
    detections: list[tuple[int, Any]] = []
    for position, fact in steps:
        detector = detectors[position]
        if fact is not None:
            detector.apply(fact, context)
            continue
        idle = learning[position]
        if idle is not None and idle(cluster, stamp, context):
            continue
        if event is None:
            event = _event_decoder.decode(encoded)
        _detect(detector, position, event, context, errors, detections)
    return detections


def _finish(
    stats: Any,
    errors: Any,
    add: Callable[[dict[str, Any]], None],
    build: Callable[[Any], dict[str, Any]],
    stateless: tuple[list[tuple[int, dict[str, Any]]], list[str], bool, int] | None,
    ordered: list[tuple[int, Any]],
    audit_id: str,
) -> None:
    """Count and add one counted event's findings, stateless and ordered merged by registry position."""
    built, failed, unbuilt, stateless_count = stateless if stateless is not None else ([], [], False, 0)
    for name in failed:
        errors[name] += 1
        log.error("detector %s failed on audit event %s", name, audit_id)
    total = stateless_count + len(ordered)
    if not total:
        return
    stats.detections += total
    try:
        if unbuilt:
            raise ValueError("a stateless detector's finding could not be built")
        built = built + [(position, build(d)) for position, d in ordered]
    except Exception:  # noqa: BLE001 - as the pipeline: one unbuildable event is a counted reject
        stats.rejected += 1
        log.exception("audit event %s skipped: its finding could not be built", audit_id)
        return
    built.sort(key=lambda item: item[0])
    for _, finding in built:
        add(finding)
