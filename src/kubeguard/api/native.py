"""Native routes: ``/api/findings`` (plain JSON for scripts and the console), ``/healthz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context, require_metrics_access, require_signature
from kubeguard.api.context import ServiceContext
from kubeguard.findings.criteria import matches
from kubeguard.store import finding_query
from kubeguard.store import findings as finding_store

router = APIRouter()
MAX_NATIVE_RESULTS = 1000


def _criterion(finding_type: str | None, cluster: str | None, min_severity: float | None, archived: bool | None):
    criterion: dict[str, dict[str, Any]] = {}
    if finding_type:
        criterion["type"] = {"eq": [finding_type]}
    if cluster:
        criterion["resource.eksClusterDetails.name"] = {"eq": [cluster]}
    if min_severity is not None:
        criterion["severity"] = {"gte": int(min_severity)}
    if archived is not None:
        criterion["service.archived"] = {"eq": ["true" if archived else "false"]}
    return criterion


def _find(ctx: ServiceContext, criterion: dict[str, dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with ctx.engine.connect() as conn:
        if finding_query.sql_ready(conn, None):
            order = finding_query.Order("updatedAt", descending=True, id_descending=False)
            for _, finding in finding_query.stream(conn, None, criterion, order, bodies=True):
                if finding is not None:
                    found.append(finding)
                if len(found) >= limit:
                    break
            return found
        for finding in finding_store.scan(conn, None, criterion):
            if matches(criterion, finding):
                found.append(finding)
                if len(found) >= limit:
                    break
    return found


@router.get("/api/findings", dependencies=[Depends(require_signature)])
async def list_findings(
    request: Request,
    type: str | None = None,
    cluster: str | None = None,
    min_severity: float | None = Query(None, ge=0, le=10),
    archived: bool | None = None,
    limit: int = Query(100, ge=1, le=MAX_NATIVE_RESULTS),
) -> dict[str, Any]:
    """Findings, most recently updated first; all filters optional."""
    criterion = _criterion(type, cluster, min_severity, archived)
    found = await run_in_threadpool(_find, context(request), criterion, limit)
    return {"findings": found, "count": len(found)}


@router.get("/api/spool", dependencies=[Depends(require_signature)])
async def spool_totals(request: Request) -> dict[str, Any]:
    """Received, drained and pending webhook batches (how every acknowledged event is accounted for), the
    lag of detection behind the webhook, and the backlog bounds past which the webhook answers 503."""
    ctx = context(request)
    if ctx.bus is not None:
        return await ctx.bus.status()
    totals: dict[str, Any] = await run_in_threadpool(ctx.spool.totals)
    totals["max_backlog_events"] = ctx.options.max_backlog_events
    totals["max_backlog_bytes"] = ctx.options.max_backlog_bytes
    return totals


@router.get("/healthz")
@router.get("/healthz/live")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. (Restart it when this fails; not when it is merely not ready.)"""
    return {"status": "ok"}


@router.get("/healthz/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready for more audit events: the store answers, detection runs, and the backlog is under its bound.

    503 otherwise, with the reasons and the lag, so a load balancer sends the webhook elsewhere meanwhile.
    """
    ctx = context(request)
    problems: list[str] = []
    body: dict[str, Any] = {}
    try:
        depth = await run_in_threadpool(ctx.spool.depth)
        body.update(
            events_pending=depth.pending_events, bytes_pending=depth.pending_bytes, lag_seconds=depth.lag_seconds()
        )
        if ctx.backlog is not None:
            full = await run_in_threadpool(ctx.backlog.full)
            if full:
                problems.append(f"backlog full: {full}")
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        problems.append(f"store unreachable: {type(exc).__name__}")
    if ctx.drainer_alive is not None and not ctx.drainer_alive():
        problems.append("detection is not running")
    if ctx.bus is not None and not ctx.bus.connected:
        problems.append("NATS is not connected")
    body["status"] = "ready" if not problems else "not ready"
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", dependencies=[Depends(require_metrics_access)])
async def metrics(request: Request) -> Response:
    ctx = context(request)
    if ctx.bus is not None:
        await ctx.bus.status()
    depth = await run_in_threadpool(ctx.spool.depth)
    ctx.metrics.queue_depth.set(depth.pending_events)
    ctx.metrics.pending_bytes.set(depth.pending_bytes)
    ctx.metrics.lag_seconds.set(depth.lag_seconds())
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
