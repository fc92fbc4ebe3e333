"""Feed the activity store: in-memory deltas per batch, written in the batch's own store transaction.

:meth:`ActivityRecorder.observe` is on the hot path of every mode (it sees each counted event once), so it
only bumps one counter keyed by the event's roll-up dimensions and, for the rare writes that create pods,
workloads or RBAC bindings or exec into a pod, notes the fact. Everything else — entities, edges,
first-seen pairs, IP enrichment — is derived from those counters in :meth:`flush`, which runs inside the
transaction that commits the batch's findings and done mark. A crash before that commit loses the deltas
together with the batch, which is then replayed; so the roll-ups count every event exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.rbac import BINDING_RESOURCES, read_binding
from kubeguard.detectors.workload import WORKLOAD_RESOURCES, read_workload, sensitive_mounts
from kubeguard.findings.criteria import epoch_ms
from kubeguard.graph import kinds
from kubeguard.graph import schema as tables

#: Resources whose successful writes carry facts beyond a count (pods and owners, bindings).
_FACT_RESOURCES = frozenset((*WORKLOAD_RESOURCES, *BINDING_RESOURCES))
_WRITE_VERBS = frozenset(("create", "update", "patch"))
_CONNECT = frozenset(("pods/exec", "pods/attach"))
_OUTCOME_BY_CODE = {code: kinds.outcome(code) for code in (0, 101, 200, 201, 202, 204, 400, 401, 403, 404, 409, 422)}
#: Bound on remembered subjects' groups and IP descriptions (skip rewriting what is already stored).
_CACHE_LIMIT = 50_000

IpDescriber = Callable[[str], dict[str, Any]]


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

    def __init__(self, describe_ip: IpDescriber | None = None) -> None:
        self._describe_ip = describe_ip
        self._calls: dict[tuple, list] = {}
        self._groups: dict[str, list[str]] = {}
        self._facts: list[AuditEvent] = []
        self._findings: list[dict[str, Any]] = []
        self._hours: dict[str, int] = {}
        self._stored_groups: dict[str, tuple[str, ...]] = {}
        self._ip_details: dict[str, dict[str, Any]] = {}
        self.events = 0

    # -- the hot path ------------------------------------------------------------------------------------

    def observe(self, event: AuditEvent) -> None:
        timestamp = event.stageTimestamp or event.requestReceivedTimestamp or event.timestamp
        hour = self._hours.get(timestamp[:13])
        if hour is None:
            hour = self._hours[timestamp[:13]] = _hour_of(timestamp)
        ref = event.objectRef
        if ref is None:
            resource = namespace = name = ""
        else:
            resource = f"{ref.resource}/{ref.subresource}" if ref.subresource else ref.resource
            namespace, name = ref.namespace, ref.name
        status = event.responseStatus
        code = status.code if status is not None else 0
        user = event.user
        ips = event.sourceIPs
        key = (
            hour,
            event.cluster,
            user.username,
            ips[0] if ips else "",
            event.userAgent,
            event.verb,
            resource,
            namespace,
            name,
            event.requestURI.partition("?")[0],
            _OUTCOME_BY_CODE.get(code) or kinds.outcome(code),
        )
        entry = self._calls.get(key)
        if entry is None:
            self._calls[key] = [1, timestamp, timestamp]
        else:
            entry[0] += 1
            if timestamp > entry[2]:
                entry[2] = timestamp
            elif timestamp < entry[1]:
                entry[1] = timestamp
        if user.groups and user.username not in self._groups:
            self._groups[user.username] = user.groups
        if resource in _CONNECT or (event.verb in _WRITE_VERBS and resource in _FACT_RESOURCES):
            self._facts.append(event)
        self.events += 1

    def observe_findings(self, findings: Iterable[dict[str, Any]]) -> None:
        """Findings stored with this batch: each gets an edge to every entity it names."""
        self._findings.extend(findings)

    @property
    def pending(self) -> int:
        return len(self._calls) + len(self._facts) + len(self._findings)

    def discard(self) -> None:
        """Forget the deltas of a batch whose transaction did not commit."""
        self._calls.clear()
        self._groups.clear()
        self._facts.clear()
        self._findings.clear()
        self.events = 0
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
        """Write the deltas gathered since the last flush in ``conn``'s transaction, then forget them."""
        if not self.pending:
            return
        entities: dict[tuple[str, str], _Entity] = {}
        edges: dict[tuple, _Edge] = {}
        pairs: dict[tuple[str, str, str], tuple[int, str]] = {}
        activity_rows = [self._activity_row(key, value) for key, value in self._calls.items()]
        for key, (count, first_text, last_text) in self._calls.items():
            self._derive(key, count, _ms(first_text), _ms(last_text), entities, edges, pairs)
        for event in self._facts:
            self._derive_fact(event, entities, edges)
        for finding in self._findings:
            self._derive_finding(finding, entities, edges)
        for username, groups in self._groups.items():
            if (kinds.SUBJECT, username) in entities and self._stored_groups.get(username) != tuple(groups):
                entities[(kinds.SUBJECT, username)].attrs["groups"] = list(groups)
        _upsert_activity(conn, activity_rows)
        _upsert_entities(conn, entities)
        _upsert_edges(conn, edges)
        _upsert_first_seen(conn, pairs)
        for username, groups in self._groups.items():
            if len(self._stored_groups) > _CACHE_LIMIT:
                self._stored_groups.clear()
            self._stored_groups[username] = tuple(groups)
        self.discard()

    @staticmethod
    def _activity_row(key: tuple, value: list) -> dict[str, Any]:
        hour, cluster, subject, ip, agent, verb, resource, namespace, name, uri, outcome = key
        agent, uri = agent[: kinds.MAX_KEY], uri[: kinds.MAX_KEY]
        dims = (hour, cluster, subject, ip, agent, verb, resource, namespace, name, uri, outcome)
        return {
            "id": tables.row_key(*dims),
            "hour_ms": hour,
            "cluster": cluster,
            "subject": subject,
            "ip": ip,
            "user_agent": agent,
            "verb": verb,
            "resource": resource,
            "namespace": namespace,
            "name": name,
            "uri": uri,
            "outcome": outcome,
            "count": value[0],
        }

    def _derive(self, key: tuple, count: int, first: int, last: int, entities: dict, edges: dict, pairs: dict) -> None:
        _hour, cluster, subject, ip, agent, verb, resource, namespace, name, _uri, _outcome = key
        agent = agent[: kinds.MAX_KEY]
        touched = [(kinds.CLUSTER, cluster)]
        if subject:
            touched.append((kinds.SUBJECT, subject))
        if ip:
            touched.append((kinds.IP, ip))
        if agent:
            touched.append((kinds.USER_AGENT, agent))
        if namespace:
            touched.append((kinds.NAMESPACE, kinds.namespace_key(cluster, namespace)))
        if name and resource.startswith("pods") and namespace:
            touched.append((kinds.POD, kinds.pod_key(namespace, name)))
        for entity in touched:
            _touch(entities, entity, first, last, count)
        asn = self._asn(ip, entities, first, last, count) if ip else ""
        if asn:
            _link(edges, (kinds.IP, ip), "in", (kinds.ASN, asn), first, last, count)
        if namespace:
            _link(
                edges,
                (kinds.NAMESPACE, kinds.namespace_key(cluster, namespace)),
                "in",
                (kinds.CLUSTER, cluster),
                first,
                last,
                count,
            )
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
        _pair(pairs, subject, "call", f"{verb} {resource}".strip(), first, cluster)

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
            owners = [ref for ref in meta.ownerReferences if ref.controller]
            if owners:
                attrs["owner"] = f"{owners[0].kind}/{owners[0].name}"
                owner = (kinds.WORKLOAD, kinds.workload_key(namespace, owners[0].kind.lower() + "s", owners[0].name))
                _touch(entities, owner, when, when, 0)
                _link(edges, node, "part of", owner, when, when, 1)
        else:
            node = (kinds.WORKLOAD, kinds.workload_key(namespace, event.resource, name))
            attrs["kind"] = event.resource
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


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _earliest(column: Any, incoming: Any) -> Any:
    return case((incoming < column, incoming), else_=column)


def _latest(column: Any, incoming: Any) -> Any:
    return case((incoming > column, incoming), else_=column)


def _upsert_activity(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = tables.activity
    statement = _insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.id], set_={"count": table.c["count"] + statement.excluded["count"]}
    )
    conn.execute(statement, rows)


def _upsert_entities(conn: Connection, entities: dict[tuple[str, str], _Entity]) -> None:
    if not entities:
        return
    table = tables.entities
    statement = _insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.kind, table.c.key],
        set_={
            "first_seen_ms": _earliest(table.c.first_seen_ms, statement.excluded.first_seen_ms),
            "last_seen_ms": _latest(table.c.last_seen_ms, statement.excluded.last_seen_ms),
            "events": table.c.events + statement.excluded.events,
        },
    )
    rows = [
        {
            "kind": kind,
            "key": key[:512],
            "first_seen_ms": entity.first,
            "last_seen_ms": entity.last,
            "events": entity.events,
            "attrs": orjson.dumps(entity.attrs).decode(),
        }
        for (kind, key), entity in entities.items()
    ]
    conn.execute(statement, rows)
    for (kind, key), entity in entities.items():
        if entity.attrs:
            _merge_attrs(conn, kind, key[:512], entity.attrs)


def _merge_attrs(conn: Connection, kind: str, key: str, attrs: dict[str, Any]) -> None:
    """Fold new facts into an entity's attributes (the insert above set them only on a new row)."""
    table = tables.entities
    where = (table.c.kind == kind) & (table.c.key == key)
    stored = conn.execute(select(table.c.attrs).where(where)).scalar()
    merged = {**(orjson.loads(stored) if stored else {}), **attrs}
    conn.execute(update(table).where(where).values(attrs=orjson.dumps(merged).decode()))


def _upsert_edges(conn: Connection, edges: dict[tuple, _Edge]) -> None:
    if not edges:
        return
    table = tables.edges
    statement = _insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={
            "first_ms": _earliest(table.c.first_ms, statement.excluded.first_ms),
            "last_ms": _latest(table.c.last_ms, statement.excluded.last_ms),
            "count": table.c["count"] + statement.excluded["count"],
        },
    )
    rows = []
    for edge in edges.values():
        src_key, dst_key = edge.src[1][:512], edge.dst[1][:512]
        rows.append(
            {
                "id": tables.row_key(edge.src[0], src_key, edge.relation, edge.dst[0], dst_key, edge.detail),
                "src_kind": edge.src[0],
                "src_key": src_key,
                "relation": edge.relation,
                "dst_kind": edge.dst[0],
                "dst_key": dst_key,
                "detail": edge.detail,
                "first_ms": edge.first,
                "last_ms": edge.last,
                "count": edge.count,
            }
        )
    conn.execute(statement, rows)


def _upsert_first_seen(conn: Connection, pairs: dict[tuple[str, str, str], tuple[int, str]]) -> None:
    if not pairs:
        return
    table = tables.first_seen
    statement = _insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.subject, table.c.dimension, table.c.value],
        set_={"first_seen_ms": _earliest(table.c.first_seen_ms, statement.excluded.first_seen_ms)},
    )
    rows = [
        {"subject": subject[:512], "dimension": dimension, "value": value, "first_seen_ms": first, "cluster": cluster}
        for (subject, dimension, value), (first, cluster) in pairs.items()
    ]
    conn.execute(statement, rows)
