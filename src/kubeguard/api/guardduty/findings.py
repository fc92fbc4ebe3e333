"""ListFindings, GetFindings, GetFindingsStatistics, Archive/Unarchive, feedback, sample findings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.context import ServiceContext
from kubeguard.api.errors import BadRequest
from kubeguard.api.guardduty import statistics
from kubeguard.api.guardduty.common import require_detector
from kubeguard.api.pagination import decode_position, encode_position, page
from kubeguard.api.params import Params, json_body
from kubeguard.findings.criteria import (
    TIMESTAMP_FIELDS,
    CriteriaError,
    epoch_ms,
    field_values,
    matches,
    validate,
)
from kubeguard.store import finding_query, finding_statistics
from kubeguard.store import findings as finding_store
from kubeguard.store.detectors import stamp_detector

router = APIRouter()
MAX_IDS = 50


def criterion_of(params: Params, *, allow_wildcards: bool = False) -> dict[str, dict[str, Any]]:
    criteria = params.mapping("findingCriteria") or {}
    try:
        return validate(criteria.get("criterion"), allow_wildcards=allow_wildcards)
    except CriteriaError as exc:
        raise BadRequest(str(exc)) from exc


def sort_of(params: Params) -> tuple[str, bool]:
    """(attribute, descending); the default is most recently updated first."""
    sort = params.mapping("sortCriteria") or {}
    attribute = sort.get("attributeName") or "updatedAt"
    order = sort.get("orderBy") or "DESC"
    if not isinstance(attribute, str) or order not in ("ASC", "DESC"):
        raise BadRequest("sortCriteria needs a string attributeName and orderBy ASC or DESC")
    return attribute, order == "DESC"


def _sort_key(attribute: str) -> Any:
    def key(finding: dict[str, Any]) -> tuple[int, Any, str]:
        values = field_values(finding, attribute)
        if not values:
            return (1, 0, finding["id"])
        value = values[0]
        if isinstance(value, str) and attribute in TIMESTAMP_FIELDS:
            value = epoch_ms(value)
        if isinstance(value, bool):
            value = int(value)
        return (0, value if isinstance(value, int | float) else str(value), finding["id"])

    return key


def matching(ctx: ServiceContext, detector_id: str, criterion: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        require_detector(conn, detector_id)
        return [f for f in finding_store.scan(conn, detector_id, criterion) if matches(criterion, f)]


def sorted_findings(found: list[dict[str, Any]], attribute: str, descending: bool) -> list[dict[str, Any]]:
    present = [f for f in found if field_values(f, attribute)]
    absent = [f for f in found if not field_values(f, attribute)]
    try:
        present.sort(key=_sort_key(attribute), reverse=descending)
    except TypeError:  # mixed value types under one attribute: fall back to text order
        present.sort(key=lambda f: str(field_values(f, attribute)[0]), reverse=descending)
    return present + sorted(absent, key=lambda f: f["id"])


@router.post("/detector/{detector_id}/findings")
async def list_findings(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    criterion = criterion_of(params)
    attribute, descending = sort_of(params)
    limit = params.integer("maxResults", low=1, high=50, default=50) or 50
    query = {"c": criterion, "s": [attribute, descending], "d": detector_id}
    token = params.string("nextToken")
    chunk, next_token = await run_in_threadpool(
        _list_page, context(request), detector_id, criterion, (attribute, descending), limit, token, query
    )
    return {"findingIds": chunk, **({"nextToken": next_token} if next_token else {})}


def _list_page(
    ctx: ServiceContext,
    detector_id: str,
    criterion: dict[str, dict[str, Any]],
    sort: tuple[str, bool],
    limit: int,
    token: str | None,
    query: dict[str, Any],
) -> tuple[list[str], str | None]:
    """One page of ids: a keyset scan in SQL when the sort field has a column, else the evaluator."""
    attribute, descending = sort
    with ctx.engine.connect() as conn:
        require_detector(conn, detector_id)
        if finding_query.sortable(attribute) and finding_query.sql_ready(conn, detector_id):
            start = _position(decode_position(token, query))
            order = finding_query.Order(attribute, descending, id_descending=descending)
            ids, last = finding_query.page(conn, detector_id, criterion, order, start, limit)
            return ids, (encode_position(last.to_json(), query) if last else None)
    found = matching(ctx, detector_id, criterion)
    return page([f["id"] for f in sorted_findings(found, attribute, descending)], token, limit, query)


def _position(data: Any) -> finding_query.Position | None:
    if data is None:
        return None
    try:
        return finding_query.Position.from_json(data)
    except (TypeError, ValueError) as exc:
        raise BadRequest("nextToken is not valid") from exc


@router.post("/detector/{detector_id}/findings/get")
async def get_findings(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    ids = params.strings("findingIds", required=True, max_items=MAX_IDS)
    ctx = context(request)
    with ctx.engine.connect() as conn:
        require_detector(conn, detector_id)
        found = finding_store.get_many(conn, detector_id, ids)
    result = [found[i] for i in dict.fromkeys(ids) if i in found]
    if params.has("sortCriteria"):
        attribute, descending = sort_of(params)
        result = sorted_findings(result, attribute, descending)
    return {"findings": result}


@router.post("/detector/{detector_id}/findings/statistics")
async def get_findings_statistics(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    types = params.strings("findingStatisticTypes", max_items=10)
    group_by = params.choice("groupBy", statistics.GROUP_BY)
    if bool(types) == bool(group_by):
        raise BadRequest("specify either findingStatisticTypes or groupBy, not both")
    if types and any(t != "COUNT_BY_SEVERITY" for t in types):
        raise BadRequest("findingStatisticTypes accepts only COUNT_BY_SEVERITY")
    if not group_by and (params.has("orderBy") or params.has("maxResults")):
        raise BadRequest("orderBy and maxResults are only accepted with groupBy")
    criterion = criterion_of(params)
    ctx = context(request)
    if not group_by:
        counts = await run_in_threadpool(_statistics, ctx, detector_id, criterion, None)
        return {"findingStatistics": {"countBySeverity": counts}}
    order = params.choice("orderBy", ("ASC", "DESC"), default="DESC")
    limit = params.integer("maxResults", low=1, high=100, default=25) or 25
    groups = await run_in_threadpool(_statistics, ctx, detector_id, criterion, group_by)
    rows = statistics.ordered(group_by, groups, descending=order == "DESC")
    query = {"c": criterion, "g": group_by, "o": order, "d": detector_id}
    chunk, token = page(rows, params.string("nextToken"), limit, query)
    body: dict[str, Any] = {"findingStatistics": {statistics.RESPONSE_KEY[group_by]: chunk}}
    if token:
        body["nextToken"] = token
    return body


def _statistics(
    ctx: ServiceContext, detector_id: str, criterion: dict[str, dict[str, Any]], group_by: str | None
) -> Any:
    """countBySeverity (``group_by`` None) or the groups: GROUP BY in SQL, else aggregated while streaming."""
    with ctx.engine.connect() as conn:
        require_detector(conn, detector_id)
        if finding_query.sql_ready(conn, detector_id):
            if finding_statistics.in_sql(criterion):
                if group_by is None:
                    return finding_statistics.count_by_severity(conn, detector_id, criterion)
                return finding_statistics.groups(conn, detector_id, criterion, group_by)
            order = finding_query.Order("updatedAt", descending=True, id_descending=False)
            streamed = finding_query.stream(conn, detector_id, criterion, order, bodies=True)
            return _aggregate((body for _, body in streamed if body is not None), group_by)
    return _aggregate(matching(ctx, detector_id, criterion), group_by)


def _aggregate(found: Any, group_by: str | None) -> Any:
    if group_by is None:
        return statistics.count_by_severity(found)
    return statistics.groups_of(found, group_by)


async def _set_service_field(request: Request, detector_id: str, field: str, value: Any) -> dict[str, Any]:
    params = await json_body(request)
    ids = params.strings("findingIds", required=True, max_items=MAX_IDS)
    ctx = context(request)
    with ctx.engine.begin() as conn:
        require_detector(conn, detector_id)
        before = finding_store.get_many(conn, detector_id, ids)
        finding_store.set_flag(conn, detector_id, ids, lambda service: service.__setitem__(field, value))
        if field == "archived" and value:
            # Sinks that follow a finding's life (PagerDuty resolves, Security Hub archives) hear of it.
            newly = [i for i, f in before.items() if not (f.get("service") or {}).get("archived")]
            archived = list(finding_store.get_many(conn, detector_id, newly).values())
            ctx.publisher.stage(conn, archived, archived_now=True)
    ctx.publisher.wake()
    return {}


@router.post("/detector/{detector_id}/findings/archive")
async def archive_findings(request: Request, detector_id: str) -> dict[str, Any]:
    return await _set_service_field(request, detector_id, "archived", True)


@router.post("/detector/{detector_id}/findings/unarchive")
async def unarchive_findings(request: Request, detector_id: str) -> dict[str, Any]:
    return await _set_service_field(request, detector_id, "archived", False)


@router.post("/detector/{detector_id}/findings/feedback")
async def update_findings_feedback(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    ids = params.strings("findingIds", required=True, max_items=MAX_IDS)
    feedback = params.choice("feedback", ("USEFUL", "NOT_USEFUL"))
    if feedback is None:
        raise BadRequest("feedback is required")
    params.string("comments", max_length=2048)
    ctx = context(request)
    with ctx.engine.begin() as conn:
        require_detector(conn, detector_id)
        finding_store.set_flag(conn, detector_id, ids, lambda service: service.__setitem__("userFeedback", feedback))
    return {}


@router.post("/detector/{detector_id}/findings/create")
async def create_sample_findings(request: Request, detector_id: str) -> dict[str, Any]:
    from kubeguard.findings.sample import sample_finding
    from kubeguard.findings.types import ALL_FINDING_TYPES

    params = await json_body(request)
    wanted = params.strings("findingTypes", max_items=50) or list(ALL_FINDING_TYPES)
    unknown = [t for t in wanted if t not in ALL_FINDING_TYPES]
    if unknown:
        raise BadRequest(f"unknown finding types: {', '.join(unknown)}")
    ctx = context(request)
    with ctx.engine.connect() as conn:
        require_detector(conn, detector_id)
    samples = [stamp_detector(sample_finding(t, ctx.settings), detector_id) for t in wanted]
    await run_in_threadpool(ctx.recorder.record, samples)
    return {}
