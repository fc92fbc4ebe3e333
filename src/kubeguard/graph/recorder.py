"""Feed the activity store: in-memory deltas per batch, written in the batch's own store transaction.

:meth:`ActivityRecorder.observe` is on the hot path of every mode (it sees each counted event once), so it
only bumps one counter keyed by the event's roll-up dimensions and, for the rare writes that create pods,
workloads or RBAC bindings or exec into a pod, derives the fact at once (a write seen again since the flush
only counts: see :meth:`ActivityRecorder._note_write`): the pipeline calls its observers
just after the detectors, so the recorder finds most strings of the event already hashed by the anomaly
learner's counting and the body a detector read in the decoder's one-entry cache, and no event is held
until the flush. Everything else — entities, edges, first-seen
pairs, IP enrichment — is derived from those counters in :meth:`flush`, which runs inside the transaction
that commits the batch's findings and done mark. A crash before that commit loses the deltas together with
the batch, which is then replayed; so the roll-ups count every event exactly once.

Entity attributes are flat (strings, numbers, booleans, lists): the store merges new ones into the stored
ones key by key in the upsert itself.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection

from kubeguard.audit.event import AuditEvent, ObjectReference, ResponseStatus, UserInfo
from kubeguard.detectors.rbac import BINDING_RESOURCES, read_binding
from kubeguard.detectors.workload import WORKLOAD_RESOURCES, read_workload, sensitive_mounts
from kubeguard.findings.criteria import epoch_ms
from kubeguard.graph import kinds
from kubeguard.graph import schema as tables
from kubeguard.spans import fold_span
from kubeguard.store.database import NUL_REPLACEMENT

#: Resources whose successful writes carry facts beyond a count (pods and owners, bindings).
_FACT_RESOURCES = frozenset((*WORKLOAD_RESOURCES, *BINDING_RESOURCES))
_WRITE_VERBS = frozenset(("create", "update", "patch"))
_CONNECT = frozenset(("pods/exec", "pods/attach"))
_CONNECT_SUBRESOURCES = frozenset(("exec", "attach"))
#: Appended to an hour's text ("2026-11-20T10"), the bound every time in that hour sorts below.
_PAST_THE_HOUR = "\uffff"
#: Bound on remembered subjects' groups and IP descriptions (skip rewriting what is already stored).
_CACHE_LIMIT = 50_000

#: How long the recorder trusts its memory of the first sightings it stored (see :meth:`ActivityRecorder._fresh_pairs`).
_KNOWN_SECONDS = 600.0

IpDescriber = Callable[[str], dict[str, Any]]

#: Each shape value is cut to its column's length: PostgreSQL refuses a longer one, and the whole batch with
#: it (an audit log can hold a name, resource or verb of any length, a request for a made-up object say).
#: The user agent and URI columns are the longest key kept (:data:`kinds.MAX_KEY`).
_SHAPE_LENGTHS = tuple(
    tables.activity_shapes.c[column].type.length
    for column in ("cluster", "subject", "ip", "user_agent", "verb", "resource", "namespace", "name", "uri")
)

#: ``KUBEGUARD_PURE_PYTHON=1`` counts in Python even where the compiled counter is built (for tests and comparisons).
PURE_PYTHON_ENV = "KUBEGUARD_PURE_PYTHON"

try:
    from kubeguard.graph import _counting
except ImportError:  # built without a C compiler: the recorder counts in Python
    _counting = None
else:
    _counting.configure(AuditEvent, ObjectReference, UserInfo, ResponseStatus,
                        frozenset(_CONNECT_SUBRESOURCES), frozenset(_WRITE_VERBS), frozenset(_FACT_RESOURCES))


def compiled_counting() -> bool:
    """Whether new recorders count with the compiled counter."""
    return _counting is not None and os.environ.get(PURE_PYTHON_ENV, "") in ("", "0")


#: Outcomes of the status codes seen most, looked up rather than worked out for every roll-up counter.
_OUTCOME_OF = {code: kinds.outcome(code) for code in (0, 101, 200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 500)}


@dataclass(slots=True)
class _Entity:
    first: int
    last: int
    events: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Edge:
    src: tuple[str, str]
    relation: str
    dst: tuple[str, str]
    detail: str
    first: int
    last: int
    count: int = 1


def _ms(timestamp: str) -> int:
    value = epoch_ms(timestamp) if timestamp else 0
    return value if isinstance(value, int) else 0


def _hour_of(timestamp: str) -> int:
    """Epoch ms of the hour a timestamp falls in; 0 for an event without a readable time."""
    try:
        hour = datetime.strptime(timestamp[:13], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return 0
    return int(hour.timestamp() * 1000)


class ActivityRecorder:
    """One per pipeline: ``observe`` each counted event, ``flush(conn)`` in the batch's transaction."""

    def __init__(self, describe_ip: IpDescriber | None = None, *, compiled: bool | None = None) -> None:
        self._describe_ip = describe_ip
        #: hash of the dimensions -> [dimensions, {hour text: count} of the hours put away, first time, last time,
        #: the hour being counted, its upper bound, its count]; see :meth:`observe`. Cleared, never replaced:
        #: the compiled counter holds it.
        self._calls: dict[int, list] = {}
        #: What the counters are keyed by: Python's hash of the key tuple, or the compiled counter's.
        self._key_hash: Callable[[tuple], int] = hash
        #: The compiled counting (None in Python): it keeps counts and times apart until :meth:`_aggregate`.
        self._counting: Any = None
        if compiled is None:
            compiled = compiled_counting()
        if compiled and _counting is not None:
            # An instance attribute in front of the method: the pipeline calls the compiled counter, which
            # calls the method for the events it leaves to it.
            self._key_hash = _counting.key_hash
            self._counting = _counting.Counter(self._calls, self._observe_in_python, self._change_hour,
                                               self._observe_facts)
            self.observe = self._counting.count
        #: (counter, hour) cells in ``_calls``: the roll-up rows the next flush writes at most (with the
        #: compiled counter's ``cells``, those its events started).
        self._cells = 0
        self._groups: dict[str, list[str]] = {}
        #: Entities and edges derived from facts (pod, workload and binding writes, execs) since the flush.
        self._fact_entities: dict[tuple[str, str], _Entity] = {}
        self._fact_edges: dict[tuple, _Edge] = {}
        #: Distinct workload and binding writes since the flush -> ((entities with their attributes as JSON,
        #: edges), count, first time, last time, time of the latest, copies of both bodies or None); see
        #: :meth:`_note_write`.
        self._writes: dict[tuple, tuple] = {}
        #: Bytes of the bodies those entries keep.
        self._body_bytes = 0
        self._findings: list[dict[str, Any]] = []
        self._hours: dict[str, int] = {}
        self._stored_groups: dict[str, tuple[str, ...]] = {}
        self._ip_details: dict[str, dict[str, Any]] = {}
        #: First sightings stored by committed flushes: (subject, dimension, value) -> a time the stored one is
        #: at or before. The last flush's wait in ``_staged_pairs`` until the next flush shows it committed.
        self._known_pairs: dict[tuple[str, str, str], int] = {}
        self._staged_pairs: dict[tuple[str, str, str], int] = {}
        self._known_since = time.monotonic()

    # -- the hot path ------------------------------------------------------------------------------------

    def observe(self, event: AuditEvent) -> None:
        """Count one event under its roll-up dimensions and hour.

        Counters are kept per distinct dimensions (who, from where, what, how it ended), each with its
        counts by hour and its first and last time: a flush then forms each shape once rather than once
        per hour it was seen (a simulated day had twelve hours per shape), and the collector sees one list
        per counter that stays, instead of a new tuple per event.

        The counters are keyed by a hash of the dimensions rather than by the dimensions: a lookup
        then compares one integer instead of a dozen strings held by some earlier event, which is most of
        what a lookup cost on a busy machine (each was a cache miss). The hash is 64 bits, salted per
        process, so two of a flush's distinct counters share one with a probability of about n²/2⁶⁵
        (10⁻¹⁰ for the most a scan holds); the dimensions are kept with the first event's counter.

        The request path is in the key only for requests without a resource (``/healthz``, ``/apis``): a
        resource request's path is spelled by its object reference (group, version, resource, namespace,
        name, subresource), which the key holds, so the counter keeps the path of its first event. Cutting
        the query off every path and hashing it cost a sixth of this method on simulated traffic, where
        nine requests in ten carry a query.

        With the compiled counter (:mod:`kubeguard.graph._counting`) this method sees only the events it
        leaves: a counter not yet made, a value of an unexpected type (it counts the rest, and hands those
        with facts to :meth:`_observe_facts`).
        """
        timestamp = event.stageTimestamp or event.requestReceivedTimestamp or event.timestamp
        ref = event.objectRef
        status = event.responseStatus
        ips = event.sourceIPs
        verb = event.verb
        if ref is None:
            resource = subresource = namespace = name = path = ""
        else:
            resource = ref.resource
            subresource = ref.subresource
            namespace = ref.namespace
            name = ref.name
            path = ""
            if subresource:
                facts = subresource in _CONNECT_SUBRESOURCES
            else:
                facts = verb in _WRITE_VERBS and resource in _FACT_RESOURCES
            if facts:
                self._observe_facts(event)
        if not resource:
            path = event.requestURI
            if "?" in path:
                path = path.partition("?")[0]
        # One tuple built whole (a second tuple appended to the first cost a copy per event).
        dims = (
            event.cluster,
            event.user.username,
            ips[0] if ips else "",
            event.userAgent,
            verb,
            path,
            status.code if status is not None else 0,
            resource,
            subresource,
            namespace,
            name,
        )
        key = self._key_hash(dims)
        counter = self._calls.get(key)
        if counter is None:
            if resource:
                uri = event.requestURI
                dims = (*dims[:5], uri.partition("?")[0] if "?" in uri else uri, *dims[6:])
            hour = timestamp[:13]
            self._calls[key] = [dims, {}, timestamp, timestamp, hour, hour + _PAST_THE_HOUR, 1]
            self._cells += 1
            user = event.user
            if user.username not in self._groups:
                self._groups[user.username] = user.groups
            return
        # An event in time order, in the hour being counted (the last time is never before that hour's start,
        # since an event of that hour started it): two compares, and the first time cannot move.
        if counter[3] <= timestamp < counter[5]:
            counter[3] = timestamp
            counter[6] += 1
            return
        # Within the hour the counter is counting (text compares in time order): no slice, no lookup.
        if counter[4] <= timestamp < counter[5]:
            counter[6] += 1
        else:
            self._change_hour(counter, timestamp)
        if timestamp > counter[3]:
            counter[3] = timestamp
        elif timestamp < counter[2]:
            counter[2] = timestamp

    _observe_in_python = observe

    def _observe_facts(self, event: AuditEvent) -> None:
        """The facts of an exec or attach, or of a create, update or patch of a workload or binding."""
        ref = event.objectRef
        if ref.subresource:
            self._derive_fact(event, self._fact_entities, self._fact_edges)
        else:
            timestamp = event.stageTimestamp or event.requestReceivedTimestamp or event.timestamp
            self._note_write(event, ref, event.responseStatus, timestamp)

    def _change_hour(self, counter: list, timestamp: str) -> None:
        """Put away the count of the counter's current hour and start counting ``timestamp``'s hour (the
        compiled counter does this itself, and calls it only for a time too short to name an hour)."""
        hours = counter[1]
        hours[counter[4]] = hours.get(counter[4], 0) + counter[6]
        hour = timestamp[:13]
        if hour not in hours:
            self._cells += 1
        counter[4], counter[5], counter[6] = hour, hour + _PAST_THE_HOUR, 1

    def _note_write(self, event: AuditEvent, ref: Any, status: Any, timestamp: str) -> None:
        """A create, update or patch of a workload or binding: its facts are derived once per distinct write
        since the flush, and a repeat (a controller writing the same object again, a replayed log) only
        counts and widens the times, which the flush applies to the derived entities and edges.

        Everything the derivation reads is in the key: who, what, the outcome and both bodies. The first
        write of an object with bodies of given lengths keeps a copy of both, and a write of the same object
        with bodies of the same lengths is a repeat when they compare equal: a comparison of bytes, where
        hashing both bodies cost about 3 us a write (7 KB of pod; observing the lab log replayed, whose copies
        repeat every write, took 7 % fewer instructions). Other bodies of the same lengths are known by
        Python's 64-bit hash of their bytes, as every body was before (a flush holds far too few distinct
        writes of one object for two to share it).
        The copies are counted in :attr:`pending` (a unit per KiB), so a flush comes before they grow large.
        A repeat moves its entry to the end, so the flush applies the writes in the order they were last
        seen and the latest write's attributes win, as they would event by event.
        """
        response = event.responseObject
        request = event.requestObject
        key = (
            event.cluster,
            event.user.username,
            event.impersonatedUser is None,
            event.verb,
            ref.resource,
            ref.namespace,
            ref.name,
            status.code if status is not None else 0,
            len(response),
            len(request),
        )
        writes = self._writes
        entry = writes.get(key)
        bodies = None
        if entry is None:
            bodies = (response.copy(), request.copy())
            self._body_bytes += len(response) + len(request)
        elif not (response == entry[5][0] and request == entry[5][1]):
            key = (*key, hash(bytes(response)), hash(bytes(request)))
            entry = writes.get(key)
        if entry is None:
            entities: dict[tuple[str, str], _Entity] = {}
            edges: dict[tuple, _Edge] = {}
            self._derive_fact(event, entities, edges)
            # Kept as tuples of strings, numbers and bytes, which the garbage collector stops tracking, rather
            # than as a dict and an object per derived entity and edge that it would walk until the flush.
            derived = (
                tuple((node, orjson.dumps(found.attrs) if found.attrs else None) for node, found in entities.items()),
                tuple((edge.src, edge.relation, edge.dst, edge.detail, edge.count) for edge in edges.values()),
            )
            writes[key] = (derived, 1, timestamp, timestamp, timestamp, bodies)
            return
        del writes[key]
        derived, count, first, last, _latest, bodies = entry
        if timestamp > last:
            last = timestamp
        elif timestamp < first:
            first = timestamp
        writes[key] = (derived, count + 1, first, last, timestamp, bodies)

    def observe_findings(self, findings: Iterable[dict[str, Any]]) -> None:
        """Findings stored with this batch: each gets an edge to every entity it names."""
        self._findings.extend(findings)

    @property
    def pending(self) -> int:
        """Roll-up rows, facts and findings waiting for the flush: what the recorder's memory grows with."""
        return (
            self._cells
            + (self._counting.cells if self._counting is not None else 0)
            + len(self._writes)
            + (self._body_bytes >> 10)
            + len(self._fact_entities)
            + len(self._fact_edges)
            + len(self._findings)
        )

    def discard(self) -> None:
        """Forget the deltas of a batch whose transaction did not commit."""
        self._staged_pairs = {}
        self._reset()

    def forget_stored_pairs(self) -> None:
        """Stop trusting the memory of stored first sightings (retention has just deleted some)."""
        self._known_pairs = {}
        self._staged_pairs = {}

    def _reset(self) -> None:
        self._calls.clear()
        if self._counting is not None:
            self._counting.clear()
        self._cells = 0
        self._groups.clear()
        self._fact_entities = {}
        self._fact_edges = {}
        self._writes = {}
        self._body_bytes = 0
        self._findings.clear()
        if len(self._hours) > _CACHE_LIMIT:
            self._hours.clear()

    def participant(self) -> BatchActivity:
        """This recorder as a participant of the batch transaction (``kubeguard.batch``)."""
        return BatchActivity(self)

    def linking(self, file_findings: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Callable:
        """Wrap the batch's finding filer so that every finding stored with the batch is linked to its entities."""

        def file(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
            filed = file_findings(found)
            self.observe_findings(filed)
            return filed

        return file

    # -- the flush ---------------------------------------------------------------------------------------

    def flush(self, conn: Connection) -> None:
        """Write the deltas gathered since the last flush in ``conn``'s transaction, then forget them.

        The collector is paused meanwhile: the flush makes tens of thousands of short-lived rows and no
        cycles, and a full collection they set off walked the whole heap, the geo database's tables
        included (0.13 s of a 200,000-event scan's 0.27 s of history, in one pass at the last flush).
        """
        if not self.pending:
            return
        paused = gc.isenabled()
        gc.disable()
        try:
            self._flush(conn)
        finally:
            if paused:
                gc.enable()

    def _flush(self, conn: Connection) -> None:
        entities, edges = self._fact_entities, self._fact_edges
        self._apply_writes(entities, edges)
        pairs: dict[tuple[str, str, str], tuple[int, str]] = {}
        rows, callers, namespaces, pods, calls = self._aggregate()
        for (cluster, subject, ip, agent), (count, first, last) in callers.items():
            self._derive_caller((cluster, subject, ip, agent), count, _ms(first), _ms(last), entities, edges, pairs)
        for (cluster, namespace), (count, first, last) in namespaces.items():
            node = (kinds.NAMESPACE, kinds.namespace_key(cluster, namespace))
            _touch(entities, node, _ms(first), _ms(last), count)
            _link(edges, node, "in", (kinds.CLUSTER, cluster), _ms(first), _ms(last), count)
        for (namespace, name), (count, first, last) in pods.items():
            _touch(entities, (kinds.POD, kinds.pod_key(namespace, name)), _ms(first), _ms(last), count)
        for (cluster, subject, call), first in calls.items():
            _pair(pairs, subject, "call", call, _ms(first), cluster)
        for finding in self._findings:
            self._derive_finding(finding, entities, edges)
        for username, groups in self._groups.items():
            if groups and (kinds.SUBJECT, username) in entities and self._stored_groups.get(username) != tuple(groups):
                entities[(kinds.SUBJECT, username)].attrs["groups"] = list(groups)
        _upsert_activity(conn, rows)
        _upsert_entities(conn, entities)
        _upsert_edges(conn, edges)
        fresh = self._fresh_pairs(pairs)
        _upsert_first_seen(conn, fresh)
        self._staged_pairs = {key: first for key, (first, _cluster) in fresh.items()}
        for username, groups in self._groups.items():
            if len(self._stored_groups) > _CACHE_LIMIT:
                self._stored_groups.clear()
            self._stored_groups[username] = tuple(groups)
        self._reset()

    def _fresh_pairs(self, pairs: dict[tuple[str, str, str], tuple[int, str]]) -> dict:
        """The first sightings this flush must write: those not stored at or before their time already.

        A stored first sighting only ever moves earlier, so a pair stored by a committed flush with a time
        at or before this one's needs no statement; in a steady stream that is nearly every pair, and each
        upsert cost PostgreSQL's client about 30 us (5.6 % of ``serve``'s interpreter time under webhook
        load). The last flush's pairs count as stored once this flush runs, which means its transaction
        committed (a failed one calls :meth:`discard`). Retention deletes the pairs of forgotten subjects:
        this process forgets what it knew when it prunes, and anything it knew past :data:`_KNOWN_SECONDS`,
        so another process's prune can delay a returning subject's first sightings by that long at most.
        """
        known = self._known_pairs
        if len(known) > _CACHE_LIMIT or time.monotonic() - self._known_since > _KNOWN_SECONDS:
            known.clear()
            self._staged_pairs = {}
            self._known_since = time.monotonic()
        known.update(self._staged_pairs)
        return {key: value for key, value in pairs.items() if key not in known or value[0] < known[key]}

    def _apply_writes(self, entities: dict, edges: dict) -> None:
        """The entities and edges of each distinct write, with the times and count of all its repeats."""
        for (nodes, links), count, first, last, latest, _bodies in self._writes.values():
            first_ms, last_ms = _ms(first), _ms(last)
            for node, blob in nodes:
                attrs = None
                if blob is not None:
                    attrs = orjson.loads(blob)
                    if "createdAt" in attrs:
                        attrs["createdAt"] = latest
                _touch(entities, node, first_ms, last_ms, 0, attrs)
            for src, relation, dst, detail, multiple in links:
                _link(edges, src, relation, dst, first_ms, last_ms, multiple * count, detail)

    def _aggregate(self) -> tuple[tuple[list[tuple], list[tuple]], dict, dict, dict, dict]:
        """Fold the counters into roll-up rows and into the few groups entities are derived from.

        Each counter's dimensions become a shape (what was called, by whom, from where, how it ended), which
        several counters may share (status codes with one outcome, values cut to the longest key kept):
        per shape one count and time span, and per (hour, shape) one row. The groups are folded from the
        shapes, which are fewer still. Times stay ISO text until the groups are formed (text compares in
        time order), so only the first and last time of each group is parsed.
        """
        if self._counting is not None:
            self._counting.sync()
        spans: dict[tuple, list] = {}
        hours_of: dict[tuple, dict[str, int]] = {}
        outcomes = _OUTCOME_OF
        c_cluster, c_subject, c_ip, c_agent, c_verb, c_resource, c_namespace, c_name, c_uri = _SHAPE_LENGTHS
        for dims, hours, first, last, hour, _, current in self._calls.values():
            # A new dict: the counters stay as they are until the flush has committed.
            hours = {**hours, hour: hours.get(hour, 0) + current}
            cluster, subject, ip, agent, verb, uri, code, resource, subresource, namespace, name = dims
            if subresource:
                resource = f"{resource}/{subresource}"
            outcome = outcomes.get(code) or kinds.outcome(code)
            shape = (cluster[:c_cluster], subject[:c_subject], ip[:c_ip], agent[:c_agent], verb[:c_verb],
                     resource[:c_resource], namespace[:c_namespace], name[:c_name], uri[:c_uri], outcome)
            if fold_span(spans, shape, sum(hours.values()), first, last):
                hours_of[shape] = hours
                continue
            merged = hours_of[shape]
            for hour_text, times in hours.items():
                merged[hour_text] = merged.get(hour_text, 0) + times
        callers: dict[tuple, list] = {}
        namespaces: dict[tuple, list] = {}
        pods: dict[tuple, list] = {}
        calls: dict[tuple, str] = {}
        for shape, (count, first, last) in spans.items():
            cluster, subject, ip, agent, verb, resource, namespace, name, path, _ = shape
            if subject or ip:
                fold_span(callers, (cluster, subject, ip, agent), count, first, last)
            if namespace:
                fold_span(namespaces, (cluster, namespace), count, first, last)
                if name and resource.startswith("pods"):
                    fold_span(pods, (namespace, name), count, first, last)
            if subject:
                # The path is cut to the longest key kept, which the pair's value is cut to anyway.
                call = (cluster, subject, f"{verb} {resource or path}".strip())
                known = calls.get(call)
                if known is None or first < known:
                    calls[call] = first
        return self._activity_rows(hours_of, spans), callers, namespaces, pods, calls

    def _hour(self, text: str) -> int:
        hour = self._hours.get(text)
        if hour is None:
            if len(self._hours) > _CACHE_LIMIT:
                self._hours.clear()
            hour = self._hours[text] = _hour_of(text)
        return hour

    def _activity_rows(self, hours_of: dict[tuple, dict[str, int]], spans: dict[tuple, list]) -> tuple[list, list]:
        """``kg_activity_shapes`` rows (key and the ten values, cleared of NUL) and ``kg_activity`` rows (hour,
        shape key, count) from each shape's counts by hour, in the column order of their statements.

        A shape's key is digested from its raw values (as :func:`~kubeguard.graph.schema.row_key` would),
        once per distinct shape, and the one string it is digested from also tells whether any value holds
        a NUL, so the common shape is neither stringified twice nor scanned value by value.

        The counts come out in key order, hour by hour, so each insert lands beside the previous one in the
        table's b-tree: the shapes are sorted by key (a few thousand) and their cells dealt out to their
        hours, instead of sorting every cell (a third of this method on simulated traffic), and each hour's
        text is turned into epoch ms once.
        """
        digest = tables.digest
        shapes = []
        keyed = []
        for shape in spans:
            material = "\x1f".join(shape)
            key = digest(material)
            shapes.append((key, *(tuple(_clean(value) for value in shape) if _NUL in material else shape)))
            keyed.append((key, hours_of[shape]))
        keyed.sort(key=itemgetter(0))
        by_hour: dict[str, list[tuple[int, int]]] = {}
        for key, hours in keyed:
            for hour_text, count in hours.items():
                cells = by_hour.get(hour_text)
                if cells is None:
                    by_hour[hour_text] = cells = []
                cells.append((key, count))
        counts = []
        for hour_text in sorted(by_hour):  # hour texts sort as their times do
            hour = self._hour(hour_text)
            counts.extend([(hour, key, count) for key, count in by_hour[hour_text]])
        return shapes, counts

    def _derive_caller(
        self,
        group: tuple[str, str, str, str],
        count: int,
        first: int,
        last: int,
        entities: dict,
        edges: dict,
        pairs: dict,
    ) -> None:
        """Entities, edges and first-seen pairs of one (cluster, subject, address, user agent) group."""
        cluster, subject, ip, agent = group
        touched = [(kinds.CLUSTER, cluster)]
        if subject:
            touched.append((kinds.SUBJECT, subject))
        if ip:
            touched.append((kinds.IP, ip))
        if agent:
            touched.append((kinds.USER_AGENT, agent))
        for entity in touched:
            _touch(entities, entity, first, last, count)
        asn = self._asn(ip, entities, first, last, count) if ip else ""
        if asn:
            _link(edges, (kinds.IP, ip), "in", (kinds.ASN, asn), first, last, count)
        if not subject:
            return
        src = (kinds.SUBJECT, subject)
        _link(edges, src, "acts in", (kinds.CLUSTER, cluster), first, last, count)
        if ip:
            _link(edges, src, "from", (kinds.IP, ip), first, last, count)
            _pair(pairs, subject, "ip", ip, first, cluster)
        if asn:
            _pair(pairs, subject, "asn", asn, first, cluster)
        if agent:
            _link(edges, src, "with", (kinds.USER_AGENT, agent), first, last, count)
            _pair(pairs, subject, "user_agent", agent, first, cluster)

    def _asn(self, ip: str, entities: dict, first: int, last: int, count: int) -> str:
        """The ASN of ``ip`` (entity ``asn``, edge ip→asn), described once per process; "" when unknown."""
        details = self._ip_details.get(ip)
        if details is None:
            details = self._describe(ip)
            if len(self._ip_details) > _CACHE_LIMIT:
                self._ip_details.clear()
            self._ip_details[ip] = details
            entities[(kinds.IP, ip)].attrs.update(details)
        asn = details.get("asn", "")
        if asn:
            _touch(entities, (kinds.ASN, asn), first, last, count, {"org": details.get("asnOrg", "")})
        return asn

    def _describe(self, ip: str) -> dict[str, Any]:
        if self._describe_ip is None:
            return {}
        try:
            remote = self._describe_ip(ip)
        except Exception:  # noqa: BLE001 - enrichment is best effort; the activity is still counted
            return {}
        org = remote.get("organization") or {}
        country = remote.get("country") or {}
        asn = str(org.get("asn") or "")
        details = {
            "asn": "" if asn in ("", "0") else asn,
            "asnOrg": org.get("asnOrg", ""),
            "country": country.get("countryName", ""),
            "countryCode": country.get("countryCode", ""),
            "city": (remote.get("city") or {}).get("cityName", ""),
        }
        return {k: v for k, v in details.items() if v and v != "UNKNOWN"}

    def _derive_fact(self, event: AuditEvent, entities: dict, edges: dict) -> None:
        when = _ms(event.event_time)
        subject = (kinds.SUBJECT, event.user.username)
        resource = f"{event.resource}/{event.subresource}" if event.subresource else event.resource
        if resource in _CONNECT:
            if event.authorized and event.name:
                pod = (kinds.POD, kinds.pod_key(event.namespace, event.name))
                _touch(entities, pod, when, when, 0)
                _link(edges, subject, "exec into", pod, when, when, 1, event.subresource)
            return
        if event.resource in BINDING_RESOURCES:
            self._derive_binding(event, subject, when, entities, edges)
            return
        view = read_workload(event)
        if view is None:
            return
        meta = view.obj.metadata
        namespace = meta.namespace or event.namespace
        name = meta.name or event.name
        if not name:
            return
        pod_spec = view.pod
        images = [c.image for c in view.containers if c.image]
        account = kinds.service_account(namespace, pod_spec.serviceAccountName or pod_spec.serviceAccount)
        attrs: dict[str, Any] = {
            "cluster": event.cluster,
            "namespace": namespace,
            "images": images,
            "serviceAccount": account,
            "createdBy": event.user.username,
            "createdAt": event.event_time,
            "hostNetwork": pod_spec.hostNetwork,
            "hostPID": pod_spec.hostPID,
            "hostIPC": pod_spec.hostIPC,
            "privileged": [c.name for c in view.containers if c.securityContext and c.securityContext.privileged],
            "hostPaths": [v.hostPath.path for v in pod_spec.volumes if v.hostPath is not None],
            "sensitiveMounts": [f"{path} → {mount}" for _c, path, mount in sensitive_mounts(view)],
        }
        if event.resource == "pods":
            node = (kinds.POD, kinds.pod_key(namespace, name))
        else:
            node = (kinds.WORKLOAD, kinds.workload_key(namespace, event.resource, name))
            attrs["kind"] = event.resource
        owners = [ref for ref in meta.ownerReferences if ref.controller]
        if owners:
            # Pod → ReplicaSet → Deployment: findings name the owner, so its profile links back down.
            attrs["owner"] = f"{owners[0].kind}/{owners[0].name}"
            owner = (kinds.WORKLOAD, kinds.workload_key(namespace, owners[0].kind.lower() + "s", owners[0].name))
            _touch(entities, owner, when, when, 0)
            _link(edges, node, "part of", owner, when, when, 1)
        _touch(entities, node, when, when, 0, attrs)
        _link(edges, subject, "created" if event.verb == "create" else "changed", node, when, when, 1)
        _link(edges, node, "runs as", (kinds.SUBJECT, account), when, when, 1)
        _touch(entities, (kinds.SUBJECT, account), when, when, 0)
        ns_node = (kinds.NAMESPACE, kinds.namespace_key(event.cluster, namespace))
        _touch(entities, ns_node, when, when, 0)
        _link(edges, node, "in", ns_node, when, when, 1)
        for image in images:
            image_node = (kinds.IMAGE, image[: kinds.MAX_KEY])
            _touch(entities, image_node, when, when, 0)
            _link(edges, node, "runs", image_node, when, when, 1)
            _link(edges, image_node, "used in", ns_node, when, when, 1)

    @staticmethod
    def _derive_binding(event: AuditEvent, subject: tuple[str, str], when: int, entities: dict, edges: dict) -> None:
        binding = read_binding(event)
        if binding is None or binding.roleRef is None:
            return
        scope = binding.metadata.namespace or event.namespace
        where = f"in {scope}" if event.resource == "rolebindings" else "cluster-wide"
        role = f"{binding.roleRef.kind} {binding.roleRef.name} {where} (binding {binding.metadata.name or event.name})"
        for grantee in binding.subjects or []:
            if grantee.kind == "ServiceAccount":
                name = kinds.service_account(grantee.namespace or scope, grantee.name)
            elif grantee.kind == "Group":
                name = f"group:{grantee.name}"
            else:
                name = grantee.name
            target = (kinds.SUBJECT, name)
            _touch(entities, target, when, when, 0)
            _link(edges, subject, "granted", target, when, when, 1, role[:512])

    @staticmethod
    def _derive_finding(finding: dict[str, Any], entities: dict, edges: dict) -> None:
        when = _ms((finding.get("service") or {}).get("eventLastSeen") or finding.get("updatedAt", ""))
        node = (kinds.FINDING, finding["id"])
        for entity in kinds.finding_entities(finding):
            _touch(entities, entity, when, when, 0)
            _link(edges, node, "names", entity, when, when, 1, finding.get("type", "")[:512])


def attach_activity(processor: Any, describe_ip: IpDescriber | None = None) -> ActivityRecorder:
    """Keep the activity store with a ``kubeguard.batch`` processor's batches (``serve`` and workers alike):
    counted events come from its pipeline's observers, the deltas flush and discard with each batch's
    transaction, and the findings the batch files are linked to their entities. Call it after the
    processor's ``file_findings`` is set."""
    activity = ActivityRecorder(describe_ip)
    processor.participants.append(activity.participant())
    processor.pipeline.observers.append(activity.observe)
    processor.file_findings = activity.linking(processor.file_findings)
    return activity


class BatchActivity:
    """The batch participant: flush and discard with the batch's transaction.

    Its ``observe`` does nothing on purpose: a participant sees every decoded event, while the roll-ups
    count what the pipeline counts (one stage per request, duplicates dropped), so the recorder is fed by
    the pipeline's ``observers`` instead.
    """

    def __init__(self, recorder: ActivityRecorder) -> None:
        self.recorder = recorder

    def observe(self, event: AuditEvent) -> None:
        return None

    def flush(self, conn: Connection, batch: Any = None) -> None:
        self.recorder.flush(conn)

    def discard(self) -> None:
        self.recorder.discard()


def _touch(
    entities: dict, entity: tuple[str, str], first: int, last: int, count: int, attrs: dict | None = None
) -> None:
    found = entities.get(entity)
    if found is None:
        found = entities[entity] = _Entity(first, last)
    else:
        if first and (not found.first or first < found.first):
            found.first = first
        found.last = max(found.last, last)
    found.events += count
    if attrs:
        found.attrs.update(attrs)


def _link(
    edges: dict,
    src: tuple[str, str],
    relation: str,
    dst: tuple[str, str],
    first: int,
    last: int,
    count: int,
    detail: str = "",
) -> None:
    key = (src, relation, dst, detail)
    found = edges.get(key)
    if found is None:
        edges[key] = _Edge(src, relation, dst, detail, first, last, count)
    else:
        found.first = min(found.first, first)
        found.last = max(found.last, last)
        found.count += count


def _pair(pairs: dict, subject: str, dimension: str, value: str, first: int, cluster: str) -> None:
    key = (subject, dimension, value[: kinds.MAX_KEY])
    known = pairs.get(key)
    if known is None or first < known[0]:
        pairs[key] = (first, cluster)


# -- statements --------------------------------------------------------------------------------------------
#
# The upserts go straight to the driver's ``executemany``: a batch writes thousands of roll-up rows, and
# building each through SQLAlchemy's statement machinery cost more than the database's own work. The SQL
# is the same on both dialects (``INSERT ... ON CONFLICT ... DO UPDATE`` with ``excluded``); only the
# placeholder differs. Strings are cleared of NUL here (PostgreSQL refuses it), as the store does elsewhere.

_NUL = "\x00"


def _clean(value: Any) -> Any:
    return value.replace(_NUL, NUL_REPLACEMENT) if isinstance(value, str) and _NUL in value else value


def _execute_many(conn: Connection, sql: str, rows: list[tuple], *, clean: bool = True) -> None:
    """``rows`` through the driver's ``executemany``; ``clean=False`` when the caller cleared NUL already."""
    if not rows:
        return
    postgres = conn.dialect.name == "postgresql"
    if clean:
        rows = [tuple(_clean(value) for value in row) for row in rows]
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(sql.replace("?", "%s") if postgres else sql, rows)
    finally:
        cursor.close()


#: A shape is written once; the next flush that sees it again finds it there and writes only counts.
_INSERT_SHAPES = """
INSERT INTO kg_activity_shapes (key, cluster, subject, ip, user_agent, verb, resource, namespace, name, uri, outcome)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO NOTHING
"""
_UPSERT_COUNTS = """
INSERT INTO kg_activity (hour_ms, shape, count) VALUES (?, ?, ?)
ON CONFLICT (hour_ms, shape) DO UPDATE SET count = kg_activity.count + excluded.count
"""
#: New attributes are merged into the stored ones key by key (attributes are flat, so SQLite's merge patch
#: and PostgreSQL's ``||`` agree), in the statement itself: no read of the stored row, no lost update when
#: two workers describe the same entity at once.
_UPSERT_ENTITY = """
INSERT INTO kg_entities (kind, key, first_seen_ms, last_seen_ms, events, attrs) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (kind, key) DO UPDATE SET
    first_seen_ms = CASE WHEN excluded.first_seen_ms < kg_entities.first_seen_ms
                         THEN excluded.first_seen_ms ELSE kg_entities.first_seen_ms END,
    last_seen_ms = CASE WHEN excluded.last_seen_ms > kg_entities.last_seen_ms
                        THEN excluded.last_seen_ms ELSE kg_entities.last_seen_ms END,
    events = kg_entities.events + excluded.events,
    attrs = CASE WHEN excluded.attrs = '{}' THEN kg_entities.attrs ELSE {merged} END
"""
_MERGED_ATTRS = {
    "sqlite": "json_patch(kg_entities.attrs, excluded.attrs)",
    "postgresql": "(kg_entities.attrs::jsonb || excluded.attrs::jsonb)::text",
}
_UPSERT_EDGE = """
INSERT INTO kg_edges (id, src_kind, src_key, relation, dst_kind, dst_key, detail, first_ms, last_ms, count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    first_ms = CASE WHEN excluded.first_ms < kg_edges.first_ms THEN excluded.first_ms ELSE kg_edges.first_ms END,
    last_ms = CASE WHEN excluded.last_ms > kg_edges.last_ms THEN excluded.last_ms ELSE kg_edges.last_ms END,
    count = kg_edges.count + excluded.count
"""
_UPSERT_FIRST_SEEN = """
INSERT INTO kg_first_seen (subject, dimension, value, first_seen_ms, cluster) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (subject, dimension, value) DO UPDATE SET
    first_seen_ms = CASE WHEN excluded.first_seen_ms < kg_first_seen.first_seen_ms
                         THEN excluded.first_seen_ms ELSE kg_first_seen.first_seen_ms END
"""


#: On PostgreSQL a flush's shapes, counts, entities and edges each go as one statement of one array per
#: column: psycopg's ``executemany`` spent about 30 microseconds of client time per row, whatever its width,
#: which made the hourly counts (three integers) cost as much as the roll-up rows of ten strings did before
#: them, and the edges 2.7 % of ``serve``'s interpreter time under webhook load.
_INSERT_SHAPES_UNNEST = """
INSERT INTO kg_activity_shapes (key, cluster, subject, ip, user_agent, verb, resource, namespace, name, uri, outcome)
SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                     %b::text[], %b::text[], %b::text[], %b::text[])
ON CONFLICT (key) DO NOTHING
"""
_UPSERT_COUNTS_UNNEST = """
INSERT INTO kg_activity (hour_ms, shape, count) SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::integer[])
ON CONFLICT (hour_ms, shape) DO UPDATE SET count = kg_activity.count + excluded.count
"""


_UPSERT_ENTITY_UNNEST = _UPSERT_ENTITY.replace(
    "VALUES (?, ?, ?, ?, ?, ?)",
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[])",
)
_UPSERT_EDGE_UNNEST = _UPSERT_EDGE.replace(
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],\n"
    "                     %b::bigint[], %b::bigint[], %b::integer[])",
)


def _upsert_activity(conn: Connection, rows: tuple[list[tuple], list[tuple]]) -> None:
    shapes, counts = rows  # cleared of NUL by _activity_rows; each (hour, shape) once, as one statement needs
    if conn.dialect.name == "postgresql":
        _execute_columns(conn, _INSERT_SHAPES_UNNEST, shapes)
        _execute_columns(conn, _UPSERT_COUNTS_UNNEST, counts)
        return
    _execute_many(conn, _INSERT_SHAPES, shapes, clean=False)
    _execute_many(conn, _UPSERT_COUNTS, counts, clean=False)


def _execute_columns(conn: Connection, sql: str, rows: list[tuple]) -> None:
    """PostgreSQL: ``rows`` in one statement that unnests one array per column (at most a flush's rows).

    The arrays go in PostgreSQL's binary format (``%b``): psycopg writes a text-format array element by
    element in Python, escaping each string with a regular expression, and that was a third of serve's
    detection CPU on PostgreSQL (40k lab events under the profiler: 0.92 s of 2.99 s)."""
    if not rows:
        return
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
    finally:
        cursor.close()


def _upsert_entities(conn: Connection, entities: dict[tuple[str, str], _Entity]) -> None:
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # One statement may upsert a row once: keys cut to the column's 512 characters are merged first, as
        # consecutive upserts would merge them (times widened, counts added, later attributes winning).
        entities = _merged_by(entities, lambda node: (node[0], node[1][:512]), _merge_entity)
    rows = [
        (kind, key[:512], entity.first, entity.last, entity.events, _attrs_json(entity.attrs) if entity.attrs else "{}")
        for (kind, key), entity in entities.items()
    ]
    merged = _MERGED_ATTRS.get(conn.dialect.name, _MERGED_ATTRS["sqlite"])
    if postgres:
        _execute_columns(conn, _UPSERT_ENTITY_UNNEST.replace("{merged}", merged),
                         [tuple(_clean(value) for value in row) for row in rows])
        return
    _execute_many(conn, _UPSERT_ENTITY.replace("{merged}", merged), rows)


def _merged_by(items: dict, key_of: Callable[[Any], Any], merge: Callable[[Any, Any], Any]) -> dict:
    """``items`` re-keyed by ``key_of(key)``, the values of keys that meet merged in order; as is when none do."""
    merged: dict = {}
    for key, value in items.items():
        short = key_of(key)
        merged[short] = value if short not in merged else merge(merged[short], value)
    return items if len(merged) == len(items) else merged


def _merge_entity(earlier: _Entity, later: _Entity) -> _Entity:
    return _Entity(min(earlier.first, later.first), max(earlier.last, later.last), earlier.events + later.events,
                   {**earlier.attrs, **later.attrs})


def _attrs_json(attrs: dict[str, Any]) -> str:
    """Attributes as stored: JSON without NUL (PostgreSQL's ``jsonb`` refuses ``\\u0000``) or nulls (a merge
    patch would read a null as "remove the key")."""
    text = orjson.dumps(attrs).decode()
    if "\\u0000" in text or "null" in text:
        clean = {
            name: [_clean(item) for item in value] if isinstance(value, list) else _clean(value)
            for name, value in attrs.items()
            if value is not None
        }
        text = orjson.dumps(clean).decode()
    return text


def _upsert_edges(conn: Connection, edges: dict[tuple, _Edge]) -> None:
    """Edges keyed by :func:`~kubeguard.graph.schema.row_key` of their six strings, digested from the one
    string that also tells whether any of them holds a NUL (the rare edge is cleared value by value)."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # One statement may upsert a row once: edges whose keys meet once cut (and so share an id) are merged.
        edges = _merged_by(edges, lambda key: ((key[0][0], key[0][1][:512]), key[1], (key[2][0], key[2][1][:512]),
                                               key[3]), _merge_edge)
    digest = tables.digest
    rows = []
    for edge in edges.values():
        values = (edge.src[0], edge.src[1][:512], edge.relation, edge.dst[0], edge.dst[1][:512], edge.detail)
        material = "\x1f".join(values)
        if _NUL in material:
            values = tuple(_clean(value) for value in values)
        rows.append((digest(material), *values, edge.first, edge.last, edge.count))
    if postgres:
        _execute_columns(conn, _UPSERT_EDGE_UNNEST, rows)
        return
    _execute_many(conn, _UPSERT_EDGE, rows, clean=False)


def _merge_edge(earlier: _Edge, later: _Edge) -> _Edge:
    return _Edge(earlier.src, earlier.relation, earlier.dst, earlier.detail, min(earlier.first, later.first),
                 max(earlier.last, later.last), earlier.count + later.count)


def _upsert_first_seen(conn: Connection, pairs: dict[tuple[str, str, str], tuple[int, str]]) -> None:
    rows = [
        (subject[:512], dimension, value, first, cluster[:255])
        for (subject, dimension, value), (first, cluster) in pairs.items()
    ]
    _execute_many(conn, _UPSERT_FIRST_SEEN, rows)
