"""Reading the activity store: profiles, activity over a scope time, newly observed values, related
findings, the neighbourhood graph and search. The JSON API and the console pages both call these.

Every read is bounded: by the scope time (an indexed ``hour_ms`` range) and by a row limit, so a page costs
the same at a million stored events as at a thousand.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, select, union_all

from kubeguard.detectors.workload import WORKLOAD_RESOURCES
from kubeguard.graph import kinds
from kubeguard.graph import schema as tables
from kubeguard.store import schema as store_schema

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: Longest scope time (Detective's limit).
MAX_SCOPE_MS = 366 * DAY_MS
DRILLDOWN_LIMIT = 400
TOP_LIMIT = 15
NEIGHBOURS_PER_NODE = 24
MAX_GRAPH_NODES = 150
#: More findings of one type around a node than this are folded into one node.
FOLD_FINDINGS_ABOVE = 3


class ScopeError(ValueError):
    """A scope time that cannot be read or is out of bounds."""


@dataclass(slots=True, frozen=True)
class Scope:
    start_ms: int
    end_ms: int

    @property
    def start(self) -> str:
        return iso(self.start_ms)

    @property
    def end(self) -> str:
        return iso(self.end_ms)

    def hours(self) -> list[int]:
        first = self.start_ms - self.start_ms % HOUR_MS
        return list(range(first, self.end_ms, HOUR_MS))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScopeError(f"not an ISO 8601 time: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def scope_of(start: str | None, end: str | None, anchor_ms: int, *, centred: bool) -> Scope:
    """The scope time asked for, else 24 h around ``anchor_ms`` (centred) or up to it (not centred)."""
    if start and end:
        scope = Scope(parse_time(start), parse_time(end))
    elif start or end:
        raise ScopeError("give both start and end, or neither")
    else:
        anchor = anchor_ms or int(datetime.now(UTC).timestamp() * 1000)
        ceiling = anchor - anchor % HOUR_MS + HOUR_MS
        scope = Scope(ceiling - 12 * HOUR_MS, ceiling + 12 * HOUR_MS) if centred else Scope(ceiling - DAY_MS, ceiling)
    if scope.end_ms <= scope.start_ms:
        raise ScopeError("end must be after start")
    if scope.end_ms - scope.start_ms > MAX_SCOPE_MS:
        raise ScopeError("a scope time may span at most one year")
    return scope


# -- entities ----------------------------------------------------------------------------------------------


def entity(conn: Connection, kind: str, key: str) -> dict[str, Any] | None:
    table = tables.entities
    row = conn.execute(select(table).where(table.c.kind == kind, table.c.key == key)).mappings().first()
    return _entity_dict(row) if row is not None else None


def workload_for_pod_link(conn: Connection, pod_key: str) -> str | None:
    """The workload a pod link names when no pod has that name: a finding about a DaemonSet or Deployment
    names the workload (``namespace/name`` as GuardDuty shows it), and its pods carry generated names."""
    namespace, _, name = pod_key.partition("/")
    if not namespace or not name or "/" in name:
        return None
    table = tables.entities
    keys = [kinds.workload_key(namespace, resource, name) for resource in WORKLOAD_RESOURCES if resource != "pods"]
    found = conn.execute(
        select(table.c.key).where(table.c.kind == kinds.WORKLOAD, table.c.key.in_(keys)).order_by(table.c.key)
    ).scalars().first()
    return str(found) if found is not None else None


def _entity_dict(row: Any) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "key": row["key"],
        "firstSeen": iso(row["first_seen_ms"]) if row["first_seen_ms"] else None,
        "lastSeen": iso(row["last_seen_ms"]) if row["last_seen_ms"] else None,
        "lastSeenMs": row["last_seen_ms"],
        "events": row["events"],
        "attributes": orjson.loads(row["attrs"]) if row["attrs"] else {},
    }


def activity_filter(kind: str, key: str, table: Any = None) -> ColumnElement[bool] | None:
    """Which roll-up rows are an entity's API activity; None for kinds that make no API calls. ``table`` is
    :data:`~kubeguard.graph.schema.activity` (the default) or the shapes table, whose columns it shares."""
    table = tables.activity if table is None else table
    if kind == kinds.CLUSTER:
        return table.c.cluster == key
    if kind == kinds.SUBJECT:
        return table.c.subject == key
    if kind == kinds.IP:
        return table.c.ip == key
    if kind == kinds.USER_AGENT:
        return table.c.user_agent == key
    if kind == kinds.NAMESPACE:
        cluster, _, namespace = key.partition("/")
        return and_(table.c.namespace == namespace, table.c.cluster == cluster)
    if kind == kinds.POD:
        namespace, _, name = key.partition("/")
        return and_(table.c.namespace == namespace, table.c.name == name, table.c.resource.like("pods%"))
    if kind == kinds.ASN:
        edges = tables.edges
        addresses = select(edges.c.src_key).where(
            edges.c.dst_kind == kinds.ASN, edges.c.dst_key == key, edges.c.src_kind == kinds.IP
        )
        return table.c.ip.in_(addresses)
    return None


def _in_scope(scope: Scope) -> ColumnElement[bool]:
    hour = tables.activity.c.hour_ms
    return and_(hour >= scope.start_ms - scope.start_ms % HOUR_MS, hour < scope.end_ms)


def series(conn: Connection, kind: str, key: str, scope: Scope) -> dict[str, Any]:
    """API calls per hour by outcome (Detective's "Overall Kubernetes API activity" panel)."""
    where = activity_filter(kind, key)
    if where is None:
        return _series_from((), scope)
    table = tables.activity
    rows = conn.execute(
        select(table.c.hour_ms, table.c.outcome, func.sum(table.c["count"]))
        .where(where, _in_scope(scope))
        .group_by(table.c.hour_ms, table.c.outcome)
    )
    return _series_from(rows, scope)


def _series_from(rows: Any, scope: Scope) -> dict[str, Any]:
    """From (hour, outcome, count) rows."""
    hours = scope.hours()
    counts: dict[str, list[int]] = {outcome: [0] * len(hours) for outcome in kinds.OUTCOMES}
    index = {hour: i for i, hour in enumerate(hours)}
    for hour, outcome, total in rows:
        if hour in index and outcome in counts:
            counts[outcome][index[hour]] += int(total)
    return {
        "start": scope.start,
        "end": scope.end,
        "hours": [iso(hour) for hour in hours],
        "outcomes": {outcome: values for outcome, values in counts.items() if any(values) or outcome != "unknown"},
        "total": sum(sum(values) for values in counts.values()),
    }


_BREAKDOWNS = ("subjects", "ips", "userAgents", "calls", "clusters", "namespaces")
_BREAKDOWN_COLUMNS = ("subject", "ip", "user_agent", "verb", "resource", "cluster", "namespace", "outcome")


def breakdown(conn: Connection, kind: str, key: str, scope: Scope) -> dict[str, list[dict[str, Any]]]:
    """The busiest subjects, IPs, user agents, API calls, clusters and namespaces in the scope, each with how
    many of its calls did not succeed. One grouped query, ranked in Python: six GROUP BYs over the same rows
    cost six scans."""
    where = activity_filter(kind, key)
    if where is None:
        return {}
    table = tables.activity
    columns = [table.c[name] for name in _BREAKDOWN_COLUMNS]
    rows = conn.execute(select(*columns, func.sum(table.c["count"])).where(where, _in_scope(scope)).group_by(*columns))
    return _breakdown_from(rows)


def _breakdown_from(rows: Any) -> dict[str, list[dict[str, Any]]]:
    """From (subject, ip, user agent, verb, resource, cluster, namespace, outcome, count) rows. Namespaces
    are named ``cluster/namespace`` (their entity key): two clusters' ``default`` are not one namespace."""
    totals: dict[str, dict[str, list[int]]] = {name: defaultdict(lambda: [0, 0]) for name in _BREAKDOWNS}
    for subject, ip, agent, verb, resource, cluster, namespace, outcome, count in rows:
        scoped = kinds.namespace_key(cluster, namespace) if namespace else ""
        values = (subject, ip, agent, f"{verb} {resource}".strip(), cluster, scoped)
        failed = 0 if outcome == "success" else int(count)
        for name, value in zip(_BREAKDOWNS, values, strict=True):
            cell = totals[name][value]
            cell[0] += int(count)
            cell[1] += failed
    return {
        name: [
            {"value": value, "count": count, "failed": failed}
            for value, (count, failed) in sorted(found.items(), key=lambda item: (-item[1][0], item[0]))[:TOP_LIMIT]
        ]
        for name, found in totals.items()
    }


_DRILL_COLUMNS = ("subject", "ip", "verb", "resource", "uri", "outcome")


def drilldown(conn: Connection, kind: str, key: str, scope: Scope) -> list[dict[str, Any]]:
    """Subject → IP → API call → request path, each with counts by outcome (the drill-down tabs)."""
    where = activity_filter(kind, key)
    if where is None:
        return []
    table = tables.activity
    columns = [table.c[name] for name in _DRILL_COLUMNS]
    total = func.sum(table.c["count"]).label("total")
    rows = conn.execute(
        select(*columns, total)
        .where(where, _in_scope(scope))
        .group_by(*columns)
        .order_by(total.desc())
        .limit(DRILLDOWN_LIMIT)
    )
    return _drilldown_from(rows)


def _drilldown_from(rows: Any) -> list[dict[str, Any]]:
    """From (subject, ip, verb, resource, uri, outcome, count) rows, the busiest :data:`DRILLDOWN_LIMIT`."""
    leaves: dict[tuple, int] = defaultdict(int)
    for subject, ip, verb, resource, uri, outcome, count in rows:
        leaves[(subject, ip, f"{verb} {resource}".strip(), uri, outcome)] += int(count)
    busiest = sorted(leaves.items(), key=lambda item: (-item[1], item[0]))[:DRILLDOWN_LIMIT]
    tree: dict[str, dict[str, dict[str, dict[str, dict[str, int]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    )
    for (subject, ip, call, uri, outcome), count in busiest:
        tree[subject][ip][call][uri][outcome] = count
    return [
        {
            "subject": subject,
            "count": _sum_tree(ips),
            "ips": [
                {
                    "ip": ip,
                    "count": _sum_tree(calls),
                    "calls": [
                        {
                            "call": call,
                            "count": _sum_tree(uris),
                            "uris": [
                                {"uri": uri, "outcomes": outcomes, "count": sum(outcomes.values())}
                                for uri, outcomes in sorted(uris.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
                            ],
                        }
                        for call, uris in sorted(calls.items(), key=lambda kv: (-_sum_tree(kv[1]), kv[0]))
                    ],
                }
                for ip, calls in sorted(ips.items(), key=lambda kv: (-_sum_tree(kv[1]), kv[0]))
            ],
        }
        for subject, ips in sorted(tree.items(), key=lambda kv: (-_sum_tree(kv[1]), kv[0]))
    ]


#: Above this many distinct calls (shapes) in a scope, a profile is aggregated by the database instead of in
#: Python.
PROFILE_ROWS_IN_MEMORY = 50_000
_SHAPE_COLUMNS = ("subject", "ip", "user_agent", "verb", "resource", "cluster", "namespace", "outcome", "uri")


def profile_activity(conn: Connection, kind: str, key: str, scope: Scope) -> dict[str, Any]:
    """Series, breakdown and drill-down of one entity from two reads of its roll-up rows in the scope: the
    calls per hour and outcome, and each distinct call's (shape's) total. The breakdown and drill-down do
    not need the hour, and a shape recurs hour after hour (a controller's watch, a person's usual calls),
    so Python folds one row per shape instead of one per shape and hour: a week of the busiest subject of
    ten million simulated events is about a fifth of the rows. Very large scopes go to the database."""
    shapes, counts = tables.activity_shapes, tables.activity_counts
    where = activity_filter(kind, key, shapes)
    if where is None:
        return {"activity": _series_from((), scope), "breakdown": {}, "drilldown": []}
    joined = counts.join(shapes, counts.c.shape == shapes.c.key)
    hours = and_(counts.c.hour_ms >= scope.start_ms - scope.start_ms % HOUR_MS, counts.c.hour_ms < scope.end_ms)
    total = func.sum(counts.c["count"])
    # One group per shape. PostgreSQL takes the shape's other columns as one value per group when grouped by
    # the shapes' primary key; SQLite takes them anyway, and grouped by that key it walked the whole key
    # index to skip a sort (every shape of the store for one namespace's profile), so it groups by the
    # counts' copy of the key.
    group = counts.c.shape if conn.dialect.name == "sqlite" else shapes.c.key
    rows = conn.execute(
        select(*(shapes.c[name] for name in _SHAPE_COLUMNS), total)
        .select_from(joined)
        .where(where, hours)
        .group_by(group)
        .limit(PROFILE_ROWS_IN_MEMORY + 1)
    ).all()
    if len(rows) > PROFILE_ROWS_IN_MEMORY:
        return {
            "activity": series(conn, kind, key, scope),
            "breakdown": breakdown(conn, kind, key, scope),
            "drilldown": drilldown(conn, kind, key, scope),
        }
    per_hour = conn.execute(
        select(counts.c.hour_ms, shapes.c.outcome, total)
        .select_from(joined)
        .where(where, hours)
        .group_by(counts.c.hour_ms, shapes.c.outcome)
    )
    return {
        "activity": _series_from(per_hour, scope),
        "breakdown": _breakdown_from((*r[:8], r[9]) for r in rows),
        "drilldown": _drilldown_from((r[0], r[1], r[3], r[4], r[8], r[7], r[9]) for r in rows),
    }


def _sum_tree(node: Any) -> int:
    if isinstance(node, int):
        return node
    return sum(_sum_tree(child) for child in node.values())


def newly_observed(conn: Connection, subject: str, scope: Scope) -> dict[str, list[dict[str, Any]]]:
    """API calls, IPs, ASNs and user agents the subject used for the first time within the scope."""
    table = tables.first_seen
    rows = conn.execute(
        select(table.c.dimension, table.c.value, table.c.first_seen_ms, table.c.cluster)
        .where(
            table.c.subject == subject,
            table.c.first_seen_ms >= scope.start_ms,
            table.c.first_seen_ms < scope.end_ms,
        )
        .order_by(table.c.first_seen_ms)
        .limit(4 * DRILLDOWN_LIMIT)
    )
    found: dict[str, list[dict[str, Any]]] = {"call": [], "ip": [], "asn": [], "user_agent": []}
    for dimension, value, first, cluster in rows:
        found.setdefault(dimension, []).append({"value": value, "firstSeen": iso(first), "cluster": cluster})
    return found


def usual(conn: Connection, subject: str, dimension: str, before_ms: int) -> list[dict[str, Any]]:
    """Values of ``dimension`` the subject used before ``before_ms`` (its baseline), newest first."""
    table = tables.first_seen
    rows = conn.execute(
        select(table.c.value, table.c.first_seen_ms)
        .where(table.c.subject == subject, table.c.dimension == dimension, table.c.first_seen_ms < before_ms)
        .order_by(table.c.first_seen_ms.desc())
        .limit(TOP_LIMIT)
    )
    return [{"value": value, "firstSeen": iso(first)} for value, first in rows]


def new_entities(conn: Connection, scope: Scope, kinds_wanted: tuple[str, ...], limit: int = 10) -> dict[str, list]:
    """Entities first seen within the scope, per kind (the summary's "newly observed" panels)."""
    table = tables.entities
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds_wanted:
        rows = conn.execute(
            select(table)
            .where(table.c.kind == kind, table.c.first_seen_ms >= scope.start_ms, table.c.first_seen_ms < scope.end_ms)
            .order_by(table.c.first_seen_ms.desc())
            .limit(limit)
        ).mappings()
        found[kind] = [_entity_dict(row) for row in rows]
    return found


#: Above this many roll-up rows PostgreSQL's own count (kept by ANALYZE and autovacuum) stands in for an
#: exact one, which reads every row: 50 ms of the summary's 145 at ten million events.
ESTIMATE_ROWS_ABOVE = 100_000


def activity_row_count(conn: Connection, estimate_above: int = ESTIMATE_ROWS_ABOVE) -> tuple[int, bool]:
    """(hourly roll-up rows, whether the number is PostgreSQL's estimate). SQLite counts its B-tree's
    entries without reading the rows (4 ms at 773,000) and is always exact."""
    if conn.dialect.name == "postgresql":
        estimate = conn.exec_driver_sql(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('kg_activity')"
        ).scalar()
        if estimate is not None and estimate > estimate_above:
            return int(estimate), True
    return int(conn.execute(select(func.count()).select_from(tables.activity_counts)).scalar() or 0), False


def latest_activity_ms(conn: Connection) -> int:
    return int(conn.execute(select(func.max(tables.entities.c.last_seen_ms))).scalar() or 0)


# -- edges, related findings and the graph ----------------------------------------------------------------


def _newest_edges_of_each_end() -> Any:
    """One statement for :func:`neighbours`, built once: the newest ``limit`` edges whose source is the node,
    then those whose target is, each read in its index's order (``ix_kg_edges_src_recent``, ``_dst_``)."""
    table = tables.edges
    walks = [
        select(table).where(end_kind == bindparam("kind"), end_key == bindparam("key"))
        .order_by(table.c.last_ms.desc(), table.c.id).limit(bindparam("limit")).subquery()
        for end_kind, end_key in ((table.c.src_kind, table.c.src_key), (table.c.dst_kind, table.c.dst_key))
    ]
    return union_all(*(select(walk) for walk in walks))


_NEWEST_EDGES = _newest_edges_of_each_end()


def neighbours(conn: Connection, kind: str, key: str, limit: int = NEIGHBOURS_PER_NODE) -> list[dict[str, Any]]:
    """Edges touching one entity, both directions, most recent first (then by id).

    The ``limit`` newest of each direction, read in index order and merged: the query with OR it replaces
    collected every edge of the node and sorted them (a namespace has one per pod). The statement is built
    once: the depth-4 graph asks for 150 nodes, and building a SELECT cost more than running it."""
    rows = conn.execute(_NEWEST_EDGES, {"kind": kind, "key": key, "limit": limit}).mappings().all()
    rows.sort(key=lambda row: (-row["last_ms"], row["id"]))
    unique = (next(same) for _, same in itertools.groupby(rows, key=lambda row: row["id"]))  # a loop: in both
    return [_edge_dict(row) for row in itertools.islice(unique, limit)]


def edges_of(conn: Connection, kind: str, key: str, relation: str, *, outgoing: bool, limit: int = 100) -> list:
    table = tables.edges
    mine = (table.c.src_kind, table.c.src_key) if outgoing else (table.c.dst_kind, table.c.dst_key)
    rows = conn.execute(
        select(table)
        .where(mine[0] == kind, mine[1] == key, table.c.relation == relation)
        .order_by(table.c.last_ms.desc())
        .limit(limit)
    ).mappings()
    return [_edge_dict(row) for row in rows]


def _edge_dict(row: Any) -> dict[str, Any]:
    return {
        "source": {"kind": row["src_kind"], "key": row["src_key"]},
        "relation": row["relation"],
        "target": {"kind": row["dst_kind"], "key": row["dst_key"]},
        "detail": row["detail"],
        "first": iso(row["first_ms"]) if row["first_ms"] else None,
        "last": iso(row["last_ms"]) if row["last_ms"] else None,
        "count": row["count"],
    }


def related_finding_ids(conn: Connection, kind: str, key: str, limit: int = 200) -> list[str]:
    table = tables.edges
    rows = conn.execute(
        select(table.c.src_key)
        .where(table.c.dst_kind == kind, table.c.dst_key == key, table.c.src_kind == kinds.FINDING)
        .order_by(table.c.last_ms.desc())
        .limit(limit)
    )
    return [row[0] for row in rows]


def findings_by_id(conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    table = store_schema.findings
    rows = conn.execute(select(table.c.id, table.c.body).where(table.c.id.in_(ids)))
    bodies = {row.id: orjson.loads(row.body) for row in rows}
    return [bodies[i] for i in ids if i in bodies]


def node_id(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def neighbourhood(
    conn: Connection, kind: str, key: str, depth: int, *, finding: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Nodes and edges within ``depth`` hops of an entity or finding, many findings of a type folded."""
    nodes: dict[str, dict[str, Any]] = {}
    links: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add_node(node_kind: str, node_key: str, level: int) -> str:
        ident = node_id(node_kind, node_key)
        if ident not in nodes:
            nodes[ident] = {
                "id": ident,
                "kind": node_kind,
                "key": node_key,
                "label": _label(node_kind, node_key),
                "depth": level,
            }
        return ident

    start = add_node(kind, key, 0)
    frontier = [(kind, key)]
    first_level = 1
    if finding is not None:
        for entity_kind, entity_key in kinds.finding_entities(finding):
            ident = add_node(entity_kind, entity_key, 1)
            links[(start, ident, "names")] = {"source": start, "target": ident, "relation": "names", "count": 1}
        frontier = [(k, v) for k, v in kinds.finding_entities(finding) if k in (kinds.SUBJECT, kinds.IP)]
        depth -= 1
        first_level = 2
    for level in range(first_level, first_level + depth):
        following: list[tuple[str, str]] = []
        for node_kind, node_key in frontier:
            for edge in neighbours(conn, node_kind, node_key):
                ends = (edge["source"], edge["target"])
                other = ends[1] if (ends[0]["kind"], ends[0]["key"]) == (node_kind, node_key) else ends[0]
                if len(nodes) >= MAX_GRAPH_NODES and node_id(other["kind"], other["key"]) not in nodes:
                    continue
                known = node_id(other["kind"], other["key"]) in nodes
                ident = add_node(other["kind"], other["key"], level)
                a, b = node_id(ends[0]["kind"], ends[0]["key"]), node_id(ends[1]["kind"], ends[1]["key"])
                links.setdefault(
                    (a, b, edge["relation"]),
                    {
                        "source": a,
                        "target": b,
                        "relation": edge["relation"],
                        "count": edge["count"],
                        "detail": edge["detail"],
                    },
                )
                if not known and other["kind"] != kinds.FINDING:
                    following.append((other["kind"], other["key"]))
        frontier = following
    _describe_findings(conn, nodes)
    graph = {"nodes": list(nodes.values()), "edges": list(links.values()), "root": start}
    return _fold_findings(graph)


def _label(kind: str, key: str) -> str:
    if kind == kinds.NAMESPACE:
        return key.partition("/")[2]
    if kind == kinds.USER_AGENT:
        return key.split(" ", 1)[0][:40]
    if kind == kinds.ASN:
        return f"AS{key}"
    if kind == kinds.FINDING:
        return key[:8]
    return key if len(key) <= 40 else "…" + key[-39:]


def _describe_findings(conn: Connection, nodes: dict[str, dict[str, Any]]) -> None:
    ids = [node["key"] for node in nodes.values() if node["kind"] == kinds.FINDING]
    for found in findings_by_id(conn, ids):
        node = nodes[node_id(kinds.FINDING, found["id"])]
        node["label"] = found["type"].split("/")[-1]
        node["type"] = found["type"]
        node["severity"] = found["severity"]


def _fold_findings(graph: dict[str, Any]) -> dict[str, Any]:
    """Findings of one type that hang off the same entity become one node "N × Type"."""
    by_anchor: dict[tuple[str, str], list[str]] = defaultdict(list)
    nodes = {node["id"]: node for node in graph["nodes"]}
    for edge in graph["edges"]:
        source = nodes.get(edge["source"])
        if source is not None and source["kind"] == kinds.FINDING and source["id"] != graph["root"]:
            by_anchor[(edge["target"], source.get("type", ""))].append(source["id"])
    folded: dict[str, str] = {}
    for (anchor, finding_type), members in by_anchor.items():
        members = [m for m in dict.fromkeys(members) if m not in folded]
        if len(members) <= FOLD_FINDINGS_ABOVE:
            continue
        group = f"group:{anchor}:{finding_type}"
        worst = max(nodes[m].get("severity", 0) for m in members)
        nodes[group] = {
            "id": group,
            "kind": "findings",
            "key": finding_type,
            "type": finding_type,
            "label": f"{len(members)} × {finding_type.split('/')[-1]}",
            "severity": worst,
            "members": [nodes[m]["key"] for m in members],
            "depth": 1,
        }
        for member in members:
            folded[member] = group
    for member in folded:
        nodes.pop(member, None)
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for edge in graph["edges"]:
        source, target = folded.get(edge["source"], edge["source"]), folded.get(edge["target"], edge["target"])
        edges.setdefault((source, target, edge["relation"]), {**edge, "source": source, "target": target})
    return {"nodes": list(nodes.values()), "edges": list(edges.values()), "root": graph["root"]}


def search(conn: Connection, text: str, limit: int = 30) -> list[dict[str, Any]]:
    """Entities whose key contains ``text`` and findings whose id starts with it."""
    text = text.strip()
    if not text:
        return []
    table = tables.entities
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        select(table).where(table.c.key.like(pattern, escape="\\")).order_by(table.c.last_seen_ms.desc()).limit(limit)
    ).mappings()
    found = [{"kind": row["kind"], "key": row["key"], "lastSeen": iso(row["last_seen_ms"])} for row in rows]
    findings = store_schema.findings
    for row in conn.execute(
        select(findings.c.id, findings.c.type).where(*id_prefix(findings.c.id, text)).order_by(findings.c.id).limit(10)
    ):
        found.append({"kind": kinds.FINDING, "key": row.id, "type": row.type})
    return found


def id_prefix(column: Any, prefix: str) -> list[ColumnElement[bool]]:
    """``column`` starts with ``prefix``, as a range of the column's index: ``prefix <= id < successor``.

    ``LIKE 'prefix%'`` read every finding on SQLite, whose LIKE ignores ASCII case and so cannot use an
    index of case-sensitive text (it matched 'ABC' to 'abc...', PostgreSQL did not). The range is
    case-sensitive on both, and ordered by code point as both compare these columns (SQLite's binary
    collation, PostgreSQL's "C")."""
    successor = _successor(prefix)
    return [column >= prefix] if successor is None else [column >= prefix, column < successor]


def _successor(prefix: str) -> str | None:
    """The least text above every text that starts with ``prefix`` (None: there is none)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + (0x801 if last == 0xD7FF else 1))  # over the surrogates
        prefix = prefix[:-1]
    return None
