"""``POST /k8s-audit[/{cluster}]``: the kube-apiserver audit webhook backend.

The API server sends an EventList (a JSON array or a single Event are accepted too), possibly gzipped.
The body is read up to a limit (413 beyond it, before anything is stored), inflated up to a second limit,
decoded to check it holds audit events (400 with the reason if none can be read), then committed to the
spool, together with the batches of concurrent requests (:mod:`kubeguard.api.ingest.group_commit`). Only
then does the API server get its 200: a crash after the 200 cannot lose the batch, and a
crash before it makes the API server retry. Detection happens later, in the drainer. While the backlog
waiting for detection is past its bound (:mod:`kubeguard.api.ingest.backlog`) the answer is 503 with
``Retry-After``, before the body is read: the API server keeps the batch and retries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from typing import Any

import anyio
from fastapi import APIRouter, Request
from sqlalchemy import literal_column, select, union
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from kubeguard.api.auth import context, webhook_identity
from kubeguard.api.errors import AccessDenied, BadRequest, PayloadTooLarge, error_response
from kubeguard.api.ingest.group_commit import GroupCommitFailed
from kubeguard.api.ingest.limits import ClusterRegistry, batch_cluster, check_object_count
from kubeguard.audit.decode import decode_bytes
from kubeguard.store import schema

log = logging.getLogger(__name__)
router = APIRouter()

GZIP_MAGIC = b"\x1f\x8b"
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@router.post("/k8s-audit")
async def ingest_default(request: Request) -> JSONResponse:
    return await _ingest(request, None)


@router.post("/k8s-audit/{cluster}")
async def ingest_cluster(request: Request, cluster: str) -> JSONResponse:
    if not CLUSTER_NAME.fullmatch(cluster):
        raise BadRequest("cluster name must be 1-100 characters of letters, digits, '.', '_' and '-'")
    return await _ingest(request, cluster)


async def _ingest(request: Request, path_cluster: str | None) -> JSONResponse:
    ctx = context(request)
    token_cluster = webhook_identity(request)
    if token_cluster and path_cluster and path_cluster != token_cluster:
        # A token bound to a cluster reports for that cluster only; the path must not file its events elsewhere.
        raise AccessDenied(f"this credential reports for cluster {token_cluster}, not {path_cluster}")
    explicit_cluster = path_cluster or token_cluster
    if ctx.backlog is not None:
        try:
            full = await _backlog_full(ctx)
        except (TimeoutError, DBAPIError) as exc:
            return _store_unavailable(ctx, explicit_cluster or ctx.options.default_cluster, exc)
        if full:
            return _retry_later(ctx, "backlog", f"detection is behind: {full}; retry later")
    try:
        body = await _read_limited(request, ctx.options.max_body_bytes)
        if request.headers.get("content-encoding", "").lower() == "gzip" or body.startswith(GZIP_MAGIC):
            body = _inflate(body, ctx.options.max_inflated_bytes)
            if body.startswith(GZIP_MAGIC):
                # The decoder would gunzip this second layer without any bound (here and in the drainer).
                raise BadRequest("gzip inside gzip is not accepted")
        check_object_count(body, ctx.options.max_json_objects)
    except PayloadTooLarge:
        ctx.metrics.batches_refused.labels("too_large").inc()
        raise
    decoded = await run_in_threadpool(decode_bytes, body, source="webhook", cluster=explicit_cluster)
    if not decoded.events:
        ctx.metrics.batches_refused.labels("malformed").inc()
        reason = decoded.rejects[0].reason if decoded.rejects else "the body holds no audit events"
        raise BadRequest(f"no audit event could be read: {reason}")
    cluster = batch_cluster(explicit_cluster, {e.cluster for e in decoded.events}, ctx.options.default_cluster)
    try:
        async with asyncio.timeout(ctx.options.store_timeout_seconds):
            registry = await _cluster_registry(request)
            registry.admit(cluster)
            if ctx.bus is None:
                # With the batches of concurrent requests, in one transaction (group commit); a stalled
                # commit does not hold the answer back past the timeout.
                spool_id = await ctx.committer.append(cluster, body, len(decoded.events))
                if ctx.handoff is not None and cluster == explicit_cluster:
                    # The drainer decodes with the batch's cluster: the same events only when it was named.
                    ctx.handoff.put(spool_id, cluster, decoded.events, len(decoded.rejects))
    except (TimeoutError, DBAPIError, GroupCommitFailed) as exc:
        return _store_unavailable(ctx, cluster, exc)
    if ctx.bus is not None:
        refused = await _publish(ctx, cluster, body, len(decoded.events))
        if refused is not None:
            return refused
    elif ctx.backlog is not None:
        ctx.backlog.added(len(decoded.events), len(body))
    ctx.metrics.events_received.labels(cluster).inc(len(decoded.events))
    ctx.metrics.events_rejected.inc(len(decoded.rejects))
    if ctx.wake_drainer is not None:
        ctx.wake_drainer(len(decoded.events))
    return JSONResponse({"accepted": len(decoded.events), "rejected": len(decoded.rejects)})


async def _backlog_full(ctx: Any) -> str | None:
    """Why the backlog refuses a batch now, or None; the store is read (from a worker thread, bounded by the
    store timeout) only when the last reading is stale, at most twice a second, and otherwise the answer
    comes without the hop to a thread and back, two waits for the interpreter lock that detection holds."""
    if not ctx.backlog.stale():
        return ctx.backlog.full(refresh=False)
    async with asyncio.timeout(ctx.options.store_timeout_seconds):
        return await anyio.to_thread.run_sync(ctx.backlog.full, abandon_on_cancel=True)


def _store_unavailable(ctx: Any, cluster: str, exc: BaseException) -> JSONResponse:
    """The store is down or stalled: nothing was acknowledged, so the API server keeps the batch and resends
    it after Retry-After (a late commit of this attempt is de-duplicated by its events' ids)."""
    log.warning("webhook batch for %s not stored: %s", cluster, type(exc).__name__)
    return _retry_later(ctx, "store_unavailable", "the store is unavailable; retry later")


def _retry_later(ctx: Any, reason: str, message: str) -> JSONResponse:
    """503 with ``Retry-After``: the API server keeps the batch and sends it again; counted by ``reason``."""
    ctx.metrics.batches_refused.labels(reason).inc()
    response = error_response(503, "ServiceUnavailableException", message)
    response.headers["Retry-After"] = str(ctx.options.retry_after_seconds)
    return response


async def _publish(ctx: Any, cluster: str, body: bytes, events: int) -> JSONResponse | None:
    """Append the batch to JetStream; a 503 with Retry-After if JetStream did not store it."""
    from kubeguard.bus.chunking import BatchTooLarge
    from kubeguard.bus.publisher import BusUnavailable

    try:
        await ctx.bus.publish(cluster, body, events)
    except BatchTooLarge as exc:
        ctx.metrics.batches_refused.labels("too_large").inc()
        raise PayloadTooLarge(str(exc)) from exc
    except BusUnavailable as exc:
        return _retry_later(ctx, "bus_unavailable", f"the batch was not stored, retry later: {exc}")
    return None


async def _cluster_registry(request: Request) -> ClusterRegistry:
    """The clusters known to the store, read once (the spool and the findings name every one seen)."""
    registry = getattr(request.app.state, "cluster_registry", None)
    if registry is None:
        ctx = context(request)

        def known() -> list[str]:
            query = union(
                select(schema.spool.c.cluster.label("name")).distinct(),
                select(schema.findings.c.cluster.label("name")).distinct(),
            )
            with ctx.engine.connect() as conn:
                return [row[0] for row in conn.execute(select(literal_column("name")).select_from(query.subquery()))]

        registry = ClusterRegistry(
            ctx.options.max_clusters, await anyio.to_thread.run_sync(known, abandon_on_cancel=True)
        )
        request.app.state.cluster_registry = registry
    return registry


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _inflate(data: bytes, limit: int) -> bytes:
    """Gunzip with a bound on the output, so a small bomb cannot take the memory.

    Every member is inflated (a gzip stream may hold several, as ``cat a.gz b.gz`` makes): stopping after
    the first would acknowledge the batch and silently drop the events of the others.
    """
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadRequest(f"body is not valid gzip: {exc}") from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"inflated body is over the {limit}-byte limit")
        if not inflater.eof:
            raise BadRequest("gzip body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)
