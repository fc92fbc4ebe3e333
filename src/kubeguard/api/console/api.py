"""The console's JSON API under ``/api/``: everything a console page shows, for scripts and for the graph.

- ``GET /api/summary`` — findings over time by severity, type and cluster; newly observed entities; health;
- ``GET /api/findings/{id}/context`` — one finding with its entities, related findings and scope;
- ``GET /api/entities/{kind}/{key}`` — an entity's profile: activity by outcome, breakdowns, drill-down,
  newly observed values (subjects), relations and related findings;
- ``GET /api/activity/{kind}/{key}`` — only the activity series;
- ``GET /api/graph/{kind}/{key}?depth=N`` — the neighbourhood graph (``kind`` may be ``finding``);
- ``GET /api/search?q=`` — entities and finding ids;
- ``GET /api/findings/count?criterion=`` — how many findings a criterion matches (suppression preview).

Scope times are ``start`` and ``end`` in ISO 8601 UTC; keys with slashes (pods, images) go as they are.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.console import data
from kubeguard.api.console.access import require_reader
from kubeguard.api.errors import ApiError, BadRequest
from kubeguard.findings.criteria import CriteriaError, validate
from kubeguard.graph import kinds, queries

router = APIRouter(dependencies=[Depends(require_reader)])
MAX_DEPTH = 4


class NotFound(ApiError):
    status = 404
    code = "NotFoundException"


def _read(request: Request, work: Any, *args: Any) -> Any:
    def run() -> Any:
        with context(request).engine.connect() as conn:
            try:
                return work(conn, *args)
            except queries.ScopeError as exc:
                raise BadRequest(str(exc)) from exc

    return run_in_threadpool(run)


def load_finding(conn: Any, finding_id: str) -> dict[str, Any] | None:
    found = queries.findings_by_id(conn, [finding_id])
    return found[0] if found else None


def _kind(kind: str) -> str:
    if kind not in kinds.ENTITY_KINDS:
        raise NotFound(f"no entity kind {kind!r}; kinds are {', '.join(kinds.ENTITY_KINDS)}")
    return kind


@router.get("/api/summary")
async def summary(request: Request, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    totals = await run_in_threadpool(context(request).spool.totals)
    return await _read(request, data.summary, start, end, totals)


@router.get("/api/findings/count")
async def count_findings(request: Request, criterion: str = Query(..., max_length=20_000)) -> dict[str, int]:
    try:
        parsed = validate(orjson.loads(criterion), allow_wildcards=True)
    except (orjson.JSONDecodeError, CriteriaError) as exc:
        raise BadRequest(f"criterion: {exc}") from exc
    matching = await _read(request, data.count_matching, parsed)
    return {"count": matching}


@router.get("/api/findings/{finding_id}/context")
async def finding_context(
    request: Request, finding_id: str, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    def work(conn: Any) -> dict[str, Any]:
        finding = load_finding(conn, finding_id)
        if finding is None:
            raise NotFound(f"no finding {finding_id}")
        return data.finding_view(conn, finding, start, end)

    return await _read(request, work)


@router.get("/api/entities/{kind}/{key:path}")
async def entity_profile(
    request: Request, kind: str, key: str, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    view = await _read(request, data.entity_view, _kind(kind), key, start, end)
    if view is None:
        raise NotFound(f"no {kind} {key!r} in the activity store")
    return view


@router.get("/api/activity/{kind}/{key:path}")
async def activity(request: Request, kind: str, key: str, start: str | None = None, end: str | None = None) -> dict:
    def work(conn: Any) -> dict[str, Any]:
        found = queries.entity(conn, _kind(kind), key)
        if found is None:
            raise NotFound(f"no {kind} {key!r} in the activity store")
        scope = queries.scope_of(start, end, found["lastSeenMs"], centred=False)
        return queries.series(conn, kind, key, scope)

    return await _read(request, work)


@router.get("/api/graph/{kind}/{key:path}")
async def graph(request: Request, kind: str, key: str, depth: int = Query(2, ge=1, le=MAX_DEPTH)) -> dict[str, Any]:
    def work(conn: Any) -> dict[str, Any]:
        if kind == kinds.FINDING:
            finding = load_finding(conn, key)
            if finding is None:
                raise NotFound(f"no finding {key}")
            return queries.neighbourhood(conn, kind, key, depth, finding=finding)
        if queries.entity(conn, _kind(kind), key) is None:
            raise NotFound(f"no {kind} {key!r} in the activity store")
        return queries.neighbourhood(conn, kind, key, depth)

    return await _read(request, work)


@router.get("/api/search")
async def search(request: Request, q: str = Query("", max_length=256)) -> dict[str, Any]:
    results = await _read(request, queries.search, q)
    return {"query": q, "results": results}
