"""``GET /api/finding-groups``: findings related by shared entities within 48 h (kubeguard JSON)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.detective import store
from kubeguard.correlate.groups import finding_groups

router = APIRouter()


@router.get("/api/finding-groups")
async def list_finding_groups(request: Request, cluster: str | None = None) -> dict[str, Any]:
    ctx = context(request)
    if ctx.detector_id is None:
        return {"groups": []}

    def load() -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            return finding_groups(store.cluster_findings(conn, str(ctx.detector_id), cluster))

    return {"groups": await run_in_threadpool(load)}
