"""Detective's investigation operations and ListGraphs, over the store's findings.

An investigation is computed when it is started (Status ``SUCCESSFUL`` at once) from the findings the
store holds for the subject in the scope, and kept, so GetInvestigation and ListIndicators answer the
same later; UpdateInvestigationState archives or reactivates it.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.context import ServiceContext
from kubeguard.api.detective import store
from kubeguard.api.errors import ApiError, BadRequest
from kubeguard.api.pagination import page
from kubeguard.api.params import Params, json_body
from kubeguard.correlate.entities import parse_subject_arn
from kubeguard.correlate.investigations import SEVERITIES, investigate
from kubeguard.intel.geo import GeoResolver

router = APIRouter()
INDICATOR_TYPES = ("TTP_OBSERVED", "IMPOSSIBLE_TRAVEL", "FLAGGED_IP_ADDRESS", "NEW_GEOLOCATION", "NEW_ASO",
                   "NEW_USER_AGENT", "RELATED_FINDING", "RELATED_FINDING_GROUP")
MAX_SCOPE_MS = 366 * 24 * 3600 * 1000


class ResourceNotFound(ApiError):
    status = 404
    code = "ResourceNotFoundException"


class ValidationError(ApiError):
    status = 400
    code = "ValidationException"


def detective_errors(route: Callable[[Request], Awaitable[dict[str, Any]]]) -> Callable[..., Any]:
    """Detective names a bad input ValidationException (GuardDuty's BadRequestException is not in its model)."""

    @functools.wraps(route)
    async def wrapper(request: Request) -> dict[str, Any]:
        try:
            return await route(request)
        except BadRequest as exc:
            raise ValidationError(exc.message) from exc

    return wrapper


def graph_arn(ctx: ServiceContext) -> str:
    settings = ctx.settings
    return f"arn:{settings.partition}:detective:{settings.region}:{settings.account_id}:graph:{ctx.detector_id}"


def _require_graph(ctx: ServiceContext, params: Params) -> None:
    arn = params.data.get("GraphArn")
    if not isinstance(arn, str) or not arn:
        raise ValidationError("GraphArn is required")
    if ctx.detector_id is None or arn != graph_arn(ctx):
        raise ResourceNotFound(f"graph {arn} does not exist")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


#: Timestamps outside 1970..9999 cannot be shown back in ISO 8601.
LAST_MS = 253_402_300_799_000


def _time_ms(params: Params, name: str) -> int:
    """A timestamp member (epoch seconds or ISO 8601, as botocore may send either) in epoch ms."""
    value = params.data.get(name)
    moment: int | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= LAST_MS / 1000:
        moment = int(value * 1000)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            moment = int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)
    if moment is None or not 0 <= moment <= LAST_MS:
        raise ValidationError(f"{name} must be a timestamp between 1970 and 9999")
    return moment


def subject_of(entity_arn: str) -> tuple[str | None, str, str | None]:
    """(cluster or None, username, Detective EntityType or None) for an entity ARN."""
    parsed = parse_subject_arn(entity_arn)
    if parsed is not None:
        cluster, username = parsed
    elif entity_arn.startswith("arn:") and (":iam::" in entity_arn or ":assumed-role/" in entity_arn):
        cluster, username = None, entity_arn
    else:
        raise ValidationError("EntityArn must be arn:kubeguard:kubernetes:::cluster/<cluster>/subject/<username>, "
                              "an IAM role or user ARN, or an assumed-role session ARN from EKS user extras")
    entity_type = "IAM_ROLE" if ":role/" in username or ":assumed-role/" in username else \
        "IAM_USER" if ":user/" in username else None
    return cluster, username, entity_type


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_") and k != "Indicators"}


@router.post("/graphs/list")
async def list_graphs(request: Request) -> dict[str, Any]:
    ctx = context(request)
    if ctx.detector_id is None:
        return {"GraphList": []}
    return {"GraphList": [{"Arn": graph_arn(ctx), "CreatedTime": _iso(0)}]}


@router.post("/investigations/startInvestigation")
@detective_errors
async def start_investigation(request: Request) -> dict[str, Any]:
    ctx = context(request)
    params = await json_body(request)
    _require_graph(ctx, params)
    entity = params.string("EntityArn", required=True) or ""
    cluster, username, entity_type = subject_of(entity)
    start, end = _time_ms(params, "ScopeStartTime"), _time_ms(params, "ScopeEndTime")
    if not start < end or end - start > MAX_SCOPE_MS:
        raise ValidationError("the scope must start before it ends and last at most one year")
    return await run_in_threadpool(_start, ctx, entity, cluster, username, entity_type, start, end)


_geo = GeoResolver()


def _start(ctx: ServiceContext, entity: str, cluster: str | None, username: str, entity_type: str | None,
           start: int, end: int) -> dict[str, Any]:
    geo = GeoResolver(city_mmdb=ctx.settings.intel.geo_city_mmdb or None,
                      asn_mmdb=ctx.settings.intel.geo_asn_mmdb or None) if ctx.settings.intel.geo_city_mmdb \
        or ctx.settings.intel.geo_asn_mmdb else _geo
    created = int(time.time() * 1000)
    digest = hashlib.sha256(f"{entity}\x1f{start}\x1f{end}\x1f{created}".encode()).hexdigest()
    investigation_id = f"{int(digest, 16) % 10**21:021d}"  # Detective's ids are 21 digits
    with ctx.engine.begin() as conn:
        found = store.cluster_findings(conn, str(ctx.detector_id), cluster)
        result = investigate(found, cluster, username, start, end, geo.details)
        record: dict[str, Any] = {
            "GraphArn": graph_arn(ctx),
            "InvestigationId": investigation_id,
            "EntityArn": entity,
            "CreatedTime": _iso(created),
            "ScopeStartTime": _iso(start),
            "ScopeEndTime": _iso(end),
            "Status": "SUCCESSFUL",
            "Severity": result.severity,
            "State": "ACTIVE",
            "Indicators": result.indicators,
            "_createdMs": created,
            "_summary": result.summary,
        }
        if entity_type:
            record["EntityType"] = entity_type
        store.save(conn, record)
    return {"InvestigationId": investigation_id}


def _load(ctx: ServiceContext, params: Params) -> dict[str, Any]:
    _require_graph(ctx, params)
    investigation_id = params.string("InvestigationId", required=True) or ""
    with ctx.engine.connect() as conn:
        record = store.get(conn, investigation_id)
    if record is None:
        raise ResourceNotFound(f"investigation {investigation_id} does not exist")
    return record


@router.post("/investigations/getInvestigation")
@detective_errors
async def get_investigation(request: Request) -> dict[str, Any]:
    ctx = context(request)
    params = await json_body(request)
    return _public(await run_in_threadpool(_load, ctx, params))


@router.post("/investigations/listIndicators")
@detective_errors
async def list_indicators(request: Request) -> dict[str, Any]:
    ctx = context(request)
    params = await json_body(request)
    record = await run_in_threadpool(_load, ctx, params)
    wanted = params.choice("IndicatorType", INDICATOR_TYPES)
    indicators = [i for i in record["Indicators"] if not wanted or i["IndicatorType"] == wanted]
    limit = params.integer("MaxResults", low=1, high=100, default=100) or 100
    chunk, token = page(indicators, params.string("NextToken"), limit,
                        ["indicators", record["InvestigationId"], wanted])
    return _paged({"GraphArn": record["GraphArn"], "InvestigationId": record["InvestigationId"],
                   "Indicators": chunk}, token)


@router.post("/investigations/listInvestigations")
@detective_errors
async def list_investigations(request: Request) -> dict[str, Any]:
    ctx = context(request)
    params = await json_body(request)
    _require_graph(ctx, params)
    records = await run_in_threadpool(_all_records, ctx)
    criteria = params.mapping("FilterCriteria") or {}
    records = [r for r in records if _passes(r, criteria)]
    sort = Params(params.mapping("SortCriteria") or {})
    field = {"SEVERITY": "Severity", "STATUS": "Status", "CREATED_TIME": "_createdMs"}.get(
        sort.choice("Field", ("SEVERITY", "STATUS", "CREATED_TIME")) or "")
    if field:
        def key(r: dict[str, Any]) -> Any:
            return SEVERITIES.index(r[field]) if field == "Severity" else r[field]
        records.sort(key=key, reverse=sort.choice("SortOrder", ("ASC", "DESC")) == "DESC")
    limit = params.integer("MaxResults", low=1, high=100, default=50) or 50
    chunk, token = page(records, params.string("NextToken"), limit,
                        ["investigations", criteria, params.mapping("SortCriteria")])
    details = [{k: r[k] for k in ("InvestigationId", "Severity", "Status", "State", "CreatedTime", "EntityArn",
                                  "EntityType") if k in r} for r in chunk]
    return _paged({"InvestigationDetails": details}, token)


def _paged(answer: dict[str, Any], token: str | None) -> dict[str, Any]:
    return {**answer, "NextToken": token} if token else answer


def _all_records(ctx: ServiceContext) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        return store.all_records(conn)


def _passes(record: dict[str, Any], criteria: dict[str, Any]) -> bool:
    """Detective's FilterCriteria: equality on Severity, Status, State, EntityArn; a CreatedTime range."""
    filters = Params(criteria)
    for name in ("Severity", "Status", "State", "EntityArn"):
        wanted = Params(filters.mapping(name) or {}).string("Value")
        if wanted and record.get(name) != wanted:
            return False
    created = filters.mapping("CreatedTime") or {}
    for bound, check in (("StartInclusive", lambda v, r: r >= v), ("EndInclusive", lambda v, r: r <= v)):
        if created.get(bound) is not None:
            value_ms = _time_ms(Params(created), bound)
            if not check(value_ms, record["_createdMs"]):
                return False
    return True


@router.post("/investigations/updateInvestigationState")
@detective_errors
async def update_investigation_state(request: Request) -> dict[str, Any]:
    ctx = context(request)
    params = await json_body(request)
    _require_graph(ctx, params)
    state = params.choice("State", ("ACTIVE", "ARCHIVED"))
    if state is None:
        raise ValidationError("State is required: ACTIVE or ARCHIVED")
    investigation_id = params.string("InvestigationId", required=True) or ""
    with ctx.engine.begin() as conn:
        if not store.set_state(conn, investigation_id, str(state)):
            raise ResourceNotFound(f"investigation {investigation_id} does not exist")
    return {}
