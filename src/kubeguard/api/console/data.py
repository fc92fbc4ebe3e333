"""What each console page shows, as plain data: the JSON API returns it and the pages render it.

The console is a client of the JSON API in the strict sense that both are built from these functions, so
a fact on a page is always available to scripts at the matching ``/api/`` route.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection, and_, case, false, func, or_, select

from kubeguard.findings.criteria import epoch_ms, field_values, matches
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as graph_tables
from kubeguard.graph.queries import DAY_MS, Scope
from kubeguard.severity import label
from kubeguard.store import finding_query, finding_statistics
from kubeguard.store import findings as finding_store
from kubeguard.store import schema as store_tables
from kubeguard.store.criteria_sql import translate

SEVERITIES = ("Low", "Medium", "High", "Critical")
USERNAME = "resource.kubernetesDetails.kubernetesUserDetails.username"
NAMESPACE = "service.action.kubernetesApiCallAction.namespace"
WORKLOAD_NAMESPACE = "resource.kubernetesDetails.kubernetesWorkloadDetails.namespace"
PAGE_SIZE = 50


def finding_time_ms(finding: dict[str, Any]) -> int:
    value = epoch_ms((finding.get("service") or {}).get("eventLastSeen") or finding.get("updatedAt") or "")
    return value if isinstance(value, int) else 0


def summary_line(finding: dict[str, Any]) -> dict[str, Any]:
    """The fields a list shows for one finding."""
    service = finding.get("service") or {}
    return {
        "id": finding["id"],
        "type": finding["type"],
        "title": finding.get("title", ""),
        "severity": finding["severity"],
        "severityLabel": label(float(finding["severity"])),
        "cluster": (field_values(finding, "resource.eksClusterDetails.name") or [""])[0],
        "subject": (field_values(finding, USERNAME) or [""])[0],
        "count": service.get("count", 1),
        "archived": bool(service.get("archived")),
        "feedback": service.get("userFeedback"),
        "firstSeen": service.get("eventFirstSeen"),
        "lastSeen": service.get("eventLastSeen"),
        "updatedAt": finding.get("updatedAt"),
    }


# -- summary -----------------------------------------------------------------------------------------------


def summary(conn: Connection, scope_start: str | None, scope_end: str | None, spool_totals: dict[str, int]) -> dict:
    """Findings over time by severity, by type and cluster; newest high ones; new entities; health.

    Counted in SQL over the summary index (``ix_kg_findings_summary``: open or not, last event time,
    cluster, severity, type), so the page reads the scope's index entries and ten finding bodies however
    many findings the store holds. A finding's time is its last event, else (none stored) its last update.
    """
    table = store_tables.findings
    latest = max(latest_finding_ms(conn), queries.latest_activity_ms(conn))
    newest_open = newest_open_by_cluster(conn)
    scope = (
        queries.scope_of(scope_start, scope_end, 0, centred=False)
        if scope_start or scope_end
        else default_summary_scope(newest_open, latest)
        if latest
        else queries.scope_of(None, None, 0, centred=False)
    )
    bucket_days = 1 if scope.end_ms - scope.start_ms <= SUMMARY_DAILY_SPAN_MS else 7
    bucket_ms = bucket_days * DAY_MS
    days = list(range(scope.start_ms - scope.start_ms % DAY_MS, scope.end_ms, bucket_ms))
    by_day = {severity: [0] * len(days) for severity in SEVERITIES}
    by_type: Counter[str] = Counter()
    by_cluster: Counter[str] = Counter()
    clusters = sorted(newest_open)
    for index, cluster, severity, finding_type, count in _open_in_scope(conn, scope, clusters, bucket_ms):
        if 0 <= index < len(days):
            by_day[label(float(severity))][index] += count
        by_type[finding_type] += count
        by_cluster[cluster] += count
    open_in_scope = and_(table.c.archived == false(), _in_scope(scope, clusters))
    newest_high = conn.execute(
        select(table.c.body).where(open_in_scope, table.c.severity >= 7)
        .order_by(FINDING_TIME.desc(), table.c.id).limit(10)
    ).scalars()
    entities = graph_tables.entities
    sizes = dict(conn.execute(select(entities.c.kind, func.count()).group_by(entities.c.kind)).all())
    activity_rows, rows_estimated = queries.activity_row_count(conn)
    # The count cells hold every finding (their triggers see every write): no count over a million rows.
    total = conn.execute(select(func.sum(store_tables.finding_counts.c.findings))).scalar()
    return {
        "scope": {"start": scope.start, "end": scope.end},
        "days": [queries.iso(day) for day in days],
        "findingsByDay": by_day,
        "bucketDays": bucket_days,
        "byType": sorted(by_type.items(), key=lambda item: (-item[1], item[0])),
        "byCluster": sorted(by_cluster.items(), key=lambda item: (-item[1], item[0])),
        "newestHigh": [summary_line(orjson.loads(body)) for body in newest_high],
        "findingsInScope": sum(by_type.values()),
        "findingsTotal": int(total or 0),
        "newlyObserved": queries.new_entities(
            conn, scope, (kinds.SUBJECT, kinds.IP, kinds.ASN, kinds.USER_AGENT), limit=8
        ),
        "health": {
            "spool": spool_totals,
            "latestActivity": queries.iso(latest) if latest else None,
            "clusters": _cluster_health(conn),
            "entities": sizes,
            "activityRows": activity_rows,
            "activityRowsEstimated": rows_estimated,
        },
    }


#: A finding's time on the summary, as :func:`finding_time_ms` reads it from the body: its last event,
#: else (no event time stored, which the row keeps as 0) its last update.
FINDING_TIME = case(
    (store_tables.findings.c.event_last_seen_ms > 0, store_tables.findings.c.event_last_seen_ms),
    else_=store_tables.findings.c.updated_at_ms,
)


def _timed_in(scope: Scope) -> Any:
    """Findings with an event time, that time in ``scope`` (a range of the summary index)."""
    last_event = store_tables.findings.c.event_last_seen_ms
    return and_(last_event >= max(scope.start_ms, 1), last_event < scope.end_ms)


def _untimed_in(scope: Scope) -> Any:
    """Findings without an event time (rare; the row keeps 0), their last update in ``scope``."""
    table = store_tables.findings
    return and_(table.c.event_last_seen_ms == 0, table.c.updated_at_ms >= scope.start_ms,
                table.c.updated_at_ms < scope.end_ms)


def _in_scope(scope: Scope, clusters: list[str]) -> Any:
    """Open-or-not findings of ``clusters`` whose time is in ``scope``, written so that the event-time range
    of each cluster reads the summary index."""
    return and_(store_tables.findings.c.cluster.in_(clusters), or_(_timed_in(scope), _untimed_in(scope)))


def _open_in_scope(
    conn: Connection, scope: Scope, clusters: list[str], bucket_ms: int
) -> list[tuple[int, str, float, str, int]]:
    """(bucket, cluster, severity, type, findings) of the open findings of ``clusters`` (every cluster with
    an open finding) in ``scope``; buckets are ``bucket_ms`` long from the day the scope starts in.

    Two statements rather than one with OR: the findings with an event time are counted from the summary
    index alone; the few without one are looked up by their update time.
    """
    table = store_tables.findings
    is_open = and_(table.c.archived == false(), table.c.cluster.in_(clusters))
    first_day = scope.start_ms - scope.start_ms % DAY_MS
    rows: list[tuple[int, str, float, str, int]] = []
    for when, where in ((table.c.event_last_seen_ms, _timed_in(scope)), (table.c.updated_at_ms, _untimed_in(scope))):
        counted = ((when - first_day) // bucket_ms, table.c.cluster, table.c.severity, table.c.type)
        statement = select(*counted, func.count()).where(is_open, where).group_by(*counted)
        for bucket, cluster, severity, kind, count in conn.execute(statement):
            rows.append((int(bucket), cluster, severity, kind, int(count)))
    return rows


def _newest(conn: Connection, where: Any) -> int:
    """The newest finding time among the findings ``where`` selects: their newest event time (one probe of
    an index ending in it), and the newest update among those without one."""
    table = store_tables.findings
    timed = conn.execute(select(func.max(table.c.event_last_seen_ms)).where(where)).scalar()
    untimed = conn.execute(
        select(func.max(table.c.updated_at_ms)).where(where, table.c.event_last_seen_ms == 0)
    ).scalar()
    return max(int(timed or 0), int(untimed or 0))


def latest_finding_ms(conn: Connection) -> int:
    """The newest finding time in the store (archived findings too), per detector by the index on
    (detector, last event time)."""
    detectors = conn.execute(select(store_tables.finding_counts.c.detector_id).distinct()).scalars().all()
    table = store_tables.findings
    return max((_newest(conn, table.c.detector_id == detector) for detector in detectors), default=0)


def newest_open_by_cluster(conn: Connection) -> dict[str, int]:
    """Each cluster's newest open (not archived) finding time: the clusters with open findings come from
    the finding counts, then the summary index answers for each."""
    table = store_tables.findings
    counts = store_tables.finding_counts
    clusters = conn.execute(
        select(counts.c.cluster).where(counts.c.archived == false(), counts.c.findings > 0).distinct()
    ).scalars().all()
    return {
        cluster: _newest(conn, and_(table.c.archived == false(), table.c.cluster == cluster)) for cluster in clusters
    }


#: The summary's default scope: the week up to the newest activity...
SUMMARY_DEFAULT_MS = 7 * DAY_MS
#: ... and counted per day up to this span, per week beyond it.
SUMMARY_DAILY_SPAN_MS = 62 * DAY_MS


def default_summary_scope(newest_open: dict[str, int], latest_ms: int) -> Scope:
    """The week up to the newest activity, widened to the week up to each cluster's newest open finding
    (``newest_open``, as :func:`newest_open_by_cluster` reads it).

    Clusters report on their own clocks: one cluster's logs imported from last quarter must not vanish
    from the summary because another reports today. Archived findings do not widen it, so a cluster that
    stopped reporting stops stretching the summary once its findings are triaged. At most a year.
    """
    anchor = _day_ceiling(latest_ms)
    start = min([anchor] + [_day_ceiling(t) for t in newest_open.values() if t]) - SUMMARY_DEFAULT_MS
    return Scope(max(start, anchor - 52 * SUMMARY_DEFAULT_MS), anchor)


def _day_ceiling(ms: int) -> int:
    return ms - ms % DAY_MS + DAY_MS


def _cluster_health(conn: Connection) -> list[dict[str, Any]]:
    table = graph_tables.entities
    rows = conn.execute(select(table).where(table.c.kind == kinds.CLUSTER).order_by(table.c.last_seen_ms.desc()))
    return [
        {
            "cluster": row.key,
            "events": row.events,
            "lastSeen": queries.iso(row.last_seen_ms) if row.last_seen_ms else None,
        }
        for row in rows
    ]


# -- findings list -----------------------------------------------------------------------------------------

SORTS = {
    "updated": (lambda f: f.get("updatedAt") or "", True),
    "severity": (lambda f: (float(f["severity"]), f.get("updatedAt") or ""), True),
    "count": (lambda f: (int((f.get("service") or {}).get("count", 1)), f.get("updatedAt") or ""), True),
    "type": (lambda f: (f["type"], f.get("updatedAt") or ""), False),
    "first": (lambda f: (f.get("service") or {}).get("eventFirstSeen") or "", True),
}


def criterion_from(filters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The GuardDuty criterion of the list's filters (so the same filter works through the API)."""
    criterion: dict[str, dict[str, Any]] = {}
    if filters.get("type"):
        criterion["type"] = {"eq": [filters["type"]]}
    if filters.get("cluster"):
        criterion["resource.eksClusterDetails.name"] = {"eq": [filters["cluster"]]}
    if filters.get("subject"):
        criterion[USERNAME] = {"eq": [filters["subject"]]}
    severity = filters.get("severity", "").lower()
    bounds = {"low": (1, 4), "medium": (4, 7), "high": (7, 9), "critical": (9, 11)}
    if severity in bounds:
        criterion["severity"] = {"gte": bounds[severity][0], "lt": bounds[severity][1]}
    archived = filters.get("archived", "false")
    if archived in ("true", "false"):
        criterion["service.archived"] = {"eq": [archived]}
    return criterion


#: Each list sort in SQL, as the Python sort orders: the key, then the store's scan order (last updated
#: first, then id) for ties, which is what Python's stable sort leaves them in.
_SQL_SORTS = {
    "updated": lambda t: (t.c.updated_at_ms.desc(), t.c.id),
    "severity": lambda t: (t.c.severity.desc(), t.c.updated_at_ms.desc(), t.c.id),
    "count": lambda t: (t.c["count"].desc(), t.c.updated_at_ms.desc(), t.c.id),
    "type": lambda t: (t.c.type, t.c.updated_at_ms, t.c.id),
    "first": lambda t: (t.c.event_first_seen_ms.desc().nulls_last(), t.c.updated_at_ms.desc(), t.c.id),
}


def findings_list(conn: Connection, filters: dict[str, str], page: int, sort: str) -> dict[str, Any]:
    """One page of the findings list, with the groups by type and the filters' choices.

    Without free text, and when every filter has its column, the database counts, groups, sorts and pages,
    and only the page's bodies are read (at a million findings the Python path below took a minute and
    several GB). Free text is matched in Python, over the findings the other filters leave."""
    criterion = criterion_from(filters)
    text = filters.get("q", "").strip().lower()
    clauses = None if text else _exact_clauses(conn, criterion)
    if clauses is not None:
        return _findings_list_in_sql(conn, criterion, clauses, page, sort)
    found = []
    for finding in finding_store.scan(conn, None, criterion):
        if not matches(criterion, finding):
            continue
        if text and text not in _searchable(finding):
            continue
        found.append(finding)
    key, descending = SORTS.get(sort, SORTS["updated"])
    found.sort(key=key, reverse=descending)
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"findings": 0, "occurrences": 0, "maxSeverity": 0.0})
    for finding in found:
        group = groups[finding["type"]]
        group["findings"] += 1
        group["occurrences"] += int((finding.get("service") or {}).get("count", 1))
        group["maxSeverity"] = max(group["maxSeverity"], float(finding["severity"]))
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    chunk = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return {
        "criterion": criterion,
        "total": len(found),
        "page": page,
        "pages": pages,
        "groups": sorted(({"type": t, **g} for t, g in groups.items()), key=_group_order),
        "findings": [summary_line(f) for f in chunk],
        "facets": _facets(conn),
    }


def _exact_clauses(conn: Connection, criterion: dict[str, dict[str, Any]]) -> list[Any] | None:
    """SQL conditions that select exactly the findings ``criterion`` matches, or None when part of it has no
    column or some stored finding's columns are not exact copies (the evaluator must read the bodies)."""
    plan = translate(criterion)
    if plan.residual or not finding_query.sql_ready(conn, None):
        return None
    return list(plan.clauses)


def _group_order(group: dict[str, Any]) -> tuple[float, int, str]:
    """Worst first, then the most findings, then by name (so equal groups keep one order)."""
    return -group["maxSeverity"], -group["findings"], group["type"]


def _findings_list_in_sql(
    conn: Connection, criterion: dict[str, dict[str, Any]], where: list[Any], page: int, sort: str
) -> dict[str, Any]:
    table = store_tables.findings
    by_type = conn.execute(
        select(table.c.type, func.count(), func.sum(table.c["count"]), func.max(table.c.severity))
        .where(*where).group_by(table.c.type)
    ).all()
    total = sum(int(row[1]) for row in by_type)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    offset = (page - 1) * PAGE_SIZE
    merged = _page_by_count(conn, criterion, offset) if sort == "count" and total > offset else None
    if merged is not None:
        bodies = _bodies_in_order(conn, merged)
    else:
        order = _SQL_SORTS.get(sort, _SQL_SORTS["updated"])(table)
        bodies = conn.execute(
            select(table.c.body).where(*where).order_by(*order).limit(PAGE_SIZE).offset(offset)
        ).scalars().all()
    groups = [
        {"type": kind, "findings": int(findings), "occurrences": int(occurrences or 0), "maxSeverity": float(worst)}
        for kind, findings, occurrences, worst in by_type
    ]
    return {
        "criterion": criterion,
        "total": total,
        "page": page,
        "pages": pages,
        "groups": sorted(groups, key=_group_order),
        "findings": [summary_line(orjson.loads(body)) for body in bodies],
        "facets": _facets(conn),
    }


#: The count sort is merged from one index walk per (archived, severity) value only up to these bounds; a
#: store with more severity values, or a page deeper than this, is sorted by the database as one query.
MERGED_VALUES_AT_MOST = 16
MERGED_ROWS_AT_MOST = 10_000


def _page_by_count(conn: Connection, criterion: dict[str, dict[str, Any]], offset: int) -> list[str] | None:
    """The ids of the page at ``offset`` sorted by count (then last update first, then id), or None when
    this path does not apply: the criterion names more than severity and archived, or too many values.

    No index orders every open finding by count across severities, and a sort of all of them took 0.4-1 s
    at a million findings. ``ix_kg_findings_list_count`` orders them by count within each (archived,
    severity) value, and a store holds few severity values (the count cells list them): each value's first
    ``offset + PAGE_SIZE`` entries are read in index order and merged here, exactly as the one ORDER BY
    would have ranked them (ids compare by code point in Python, SQLite and PostgreSQL's "C" collation).
    The walks name only the value (the cells chose the values by the criterion): with the criterion's
    range beside it, SQLite took the range and sorted it."""
    if not set(criterion) <= {"severity", "service.archived"} or offset + PAGE_SIZE > MERGED_ROWS_AT_MOST:
        return None
    values = finding_statistics.archived_severities(conn, criterion)
    if values is None or len(values) > MERGED_VALUES_AT_MOST:
        return None
    table = store_tables.findings
    walks = []
    for archived, severity in values:
        rows = conn.execute(
            select(table.c["count"], table.c.updated_at_ms, table.c.id)
            .where(table.c.archived == archived, table.c.severity == severity)
            .order_by(table.c["count"].desc(), table.c.updated_at_ms.desc(), table.c.id)
            .limit(offset + PAGE_SIZE)
        ).all()
        walks.append(rows)
    ranked = heapq.merge(*walks, key=lambda row: (-row[0], -row[1], row[2]))
    return [row[2] for row in itertools.islice(ranked, offset, offset + PAGE_SIZE)]


def _bodies_in_order(conn: Connection, ids: list[str]) -> list[str]:
    table = store_tables.findings
    bodies = dict(conn.execute(select(table.c.id, table.c.body).where(table.c.id.in_(ids))).all())
    return [bodies[found] for found in ids if found in bodies]


def _searchable(finding: dict[str, Any]) -> str:
    return " ".join(
        str(part)
        for part in (
            finding["id"],
            finding["type"],
            finding.get("title"),
            finding.get("description"),
            *field_values(finding, USERNAME),
        )
    ).lower()


def _facets(conn: Connection) -> dict[str, list[str]]:
    """The types and clusters the filters offer: every value a stored finding has.

    Read from the count cells (one row per combination of the grouped fields, an empty one deleted in the
    transaction that empties it), which hold the same column values: a DISTINCT over the findings walked a
    whole index, 1,000,000 entries per facet at a million findings (the findings list page took 290-314 ms
    there, half of it these two walks)."""
    cells = store_tables.finding_counts
    return {
        "types": [row[0] for row in conn.execute(select(cells.c.type).distinct().order_by(cells.c.type))],
        "clusters": [row[0] for row in conn.execute(select(cells.c.cluster).distinct().order_by(cells.c.cluster))],
    }


def count_matching(conn: Connection, criterion: dict[str, dict[str, Any]], *, archived: bool | None = False) -> int:
    """How many stored findings ``criterion`` matches (the suppression form's preview).

    Counted in SQL when the whole criterion has columns and every finding's columns are exact: from the
    pre-aggregated cells when it names only fields they keep, else one ``COUNT`` over the indexes (the form
    evaluated every finding of its type in Python, and ``severity >= 7`` counted a quarter of a million
    findings in 225 ms at a million stored); else each candidate is evaluated in Python."""
    clauses = _exact_clauses(conn, criterion)
    if clauses is not None:
        from_cells = finding_statistics.count_of_every_detector(conn, criterion, archived)
        if from_cells is not None:
            return from_cells
        table = store_tables.findings
        where = list(clauses)
        if archived is not None:
            where.append(table.c.archived == archived)
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
    total = 0
    for finding in finding_store.scan(conn, None, criterion):
        if archived is not None and bool((finding.get("service") or {}).get("archived")) != archived:
            continue
        if matches(criterion, finding):
            total += 1
    return total


# -- one finding -------------------------------------------------------------------------------------------


def finding_view(conn: Connection, finding: dict[str, Any], start: str | None, end: str | None) -> dict[str, Any]:
    anchor = finding_time_ms(finding)
    scope = queries.scope_of(start, end, anchor, centred=True)
    entities = kinds.finding_entities(finding)
    related: dict[str, dict[str, Any]] = {}
    for kind, key in entities:
        if kind not in (kinds.SUBJECT, kinds.IP, kinds.POD, kinds.WORKLOAD):
            continue
        for other in queries.findings_by_id(conn, queries.related_finding_ids(conn, kind, key, limit=50)):
            if other["id"] != finding["id"]:
                line = related.setdefault(other["id"], {**summary_line(other), "via": []})
                line["via"].append({"kind": kind, "key": key})
    subject = next((key for kind, key in entities if kind == kinds.SUBJECT), "")
    return {
        "finding": finding,
        "summary": summary_line(finding),
        "scope": {"start": scope.start, "end": scope.end},
        "entities": [{"kind": kind, "key": key} for kind, key in entities],
        "related": sorted(related.values(), key=lambda f: f.get("updatedAt") or "", reverse=True)[:50],
        "subjectActivity": queries.series(conn, kinds.SUBJECT, subject, scope) if subject else None,
    }


def suppression_criterion(finding: dict[str, Any]) -> dict[str, list[str]]:
    """The fields a "suppress findings like this" rule starts from, with this finding's values."""
    fields = {
        "type": [finding["type"]],
        "resource.eksClusterDetails.name": field_values(finding, "resource.eksClusterDetails.name"),
        USERNAME: field_values(finding, USERNAME),
        NAMESPACE: field_values(finding, NAMESPACE),
        "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.imagePrefix": field_values(
            finding, "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.imagePrefix"
        ),
        "service.action.kubernetesApiCallAction.remoteIpDetails.ipAddressV4": field_values(
            finding, "service.action.kubernetesApiCallAction.remoteIpDetails.ipAddressV4"
        ),
    }
    return {name: [str(v) for v in values if v not in (None, "")] for name, values in fields.items() if values}


# -- one entity --------------------------------------------------------------------------------------------


def entity_view(conn: Connection, kind: str, key: str, start: str | None, end: str | None) -> dict[str, Any] | None:
    found = queries.entity(conn, kind, key)
    if found is None:
        return None
    scope = queries.scope_of(start, end, found["lastSeenMs"], centred=False)
    view: dict[str, Any] = {
        "entity": found,
        "scope": {"start": scope.start, "end": scope.end},
        **queries.profile_activity(conn, kind, key, scope),
        "relations": _relations(conn, kind, key),
        "findings": [summary_line(f) for f in queries.findings_by_id(conn, _related_ids(conn, kind, key))],
    }
    if kind == kinds.SUBJECT:
        view["newlyObserved"] = queries.newly_observed(conn, key, scope)
        view["usual"] = {dim: queries.usual(conn, key, dim, scope.start_ms) for dim in ("ip", "user_agent", "asn")}
        if not view["newlyObserved"]["asn"] and not view["usual"]["asn"]:
            view["newlyObserved"]["asn"], view["usual"]["asn"] = _networks_by_owner(conn, view)
    return view


def _networks_by_owner(conn: Connection, view: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """New and usual networks named by their owner, when the IP database knows owners but not AS numbers
    (the bundled geoip2fast): a hosting provider never seen before is what a stolen credential looks like.
    Entries carry ``owner`` so the page does not link them as AS numbers."""
    new_ips, usual_ips = view["newlyObserved"]["ip"], view["usual"]["ip"]
    owners = {
        ip: attrs.get("asnOrg", "")
        for ip, attrs in entity_attributes(conn, kinds.IP, [i["value"] for i in new_ips + usual_ips]).items()
    }
    usual: dict[str, dict[str, Any]] = {}
    for item in usual_ips:
        owner = owners.get(item["value"])
        if owner and owner not in usual:
            usual[owner] = {"value": owner, "firstSeen": item["firstSeen"], "owner": True}
    new: dict[str, dict[str, Any]] = {}
    for item in new_ips:
        owner = owners.get(item["value"])
        if owner and owner not in usual and owner not in new:
            new[owner] = {"value": owner, "firstSeen": item["firstSeen"], "owner": True}
    return list(new.values()), list(usual.values())


def _related_ids(conn: Connection, kind: str, key: str) -> list[str]:
    """Findings naming the entity, and for a pod or workload those naming its owners (a finding about a
    Deployment is about the pods its ReplicaSet runs)."""
    ids = queries.related_finding_ids(conn, kind, key)
    current_kind, current = kind, key
    for _ in range(3 if kind in (kinds.POD, kinds.WORKLOAD) else 0):
        owners = queries.edges_of(conn, current_kind, current, "part of", outgoing=True, limit=1)
        if not owners:
            break
        current_kind, current = owners[0]["target"]["kind"], owners[0]["target"]["key"]
        ids += [found for found in queries.related_finding_ids(conn, current_kind, current) if found not in ids]
    return ids


#: (relation, outgoing?) per kind, and the heading the profile gives it.
RELATIONS: dict[str, list[tuple[str, bool, str]]] = {
    kinds.SUBJECT: [
        ("from", True, "Source IP addresses (all time)"),
        ("with", True, "User agents (all time)"),
        ("created", True, "Pods and workloads created"),
        ("exec into", True, "Pods exec'd into"),
        ("granted", True, "RBAC granted by this subject"),
        ("granted", False, "RBAC granted to this subject"),
        ("runs as", False, "Pods running as this service account"),
        ("acts in", True, "Clusters (all time)"),
    ],
    kinds.IP: [("from", False, "Subjects that used this address"), ("in", True, "Autonomous system")],
    kinds.POD: [
        ("created", False, "Created by"),
        ("exec into", False, "Exec'd into by"),
        ("runs", True, "Images"),
        ("runs as", True, "Service account"),
        ("part of", True, "Workload"),
        ("in", True, "Namespace"),
    ],
    kinds.IMAGE: [("runs", False, "Pods and workloads running this image"), ("used in", True, "Namespaces running it")],
    kinds.WORKLOAD: [
        ("created", False, "Created by"),
        ("part of", False, "Pods"),
        ("runs", True, "Images"),
        ("in", True, "Namespace"),
    ],
    kinds.CLUSTER: [("acts in", False, "Subjects (all time)"), ("in", False, "Namespaces (all time)")],
    kinds.NAMESPACE: [("in", False, "Pods and workloads"), ("used in", False, "Images"), ("in", True, "Cluster")],
    kinds.USER_AGENT: [("with", False, "Subjects using it")],
    kinds.ASN: [("in", False, "Addresses")],
}


def _relations(conn: Connection, kind: str, key: str) -> list[dict[str, Any]]:
    sections = []
    for relation, outgoing, heading in RELATIONS.get(kind, []):
        edges = queries.edges_of(conn, kind, key, relation, outgoing=outgoing)
        if edges:
            sections.append({"relation": relation, "outgoing": outgoing, "heading": heading, "edges": edges})
    return sections


def entity_attributes(conn: Connection, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Attributes of several entities of one kind (images and security context of listed pods)."""
    if not keys:
        return {}
    table = graph_tables.entities
    rows = conn.execute(select(table.c.key, table.c.attrs).where(table.c.kind == kind, table.c.key.in_(keys)))
    return {row.key: orjson.loads(row.attrs) for row in rows}
