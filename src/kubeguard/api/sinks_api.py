"""``GET /api/sinks``: each sink's delivery health (delivered, retried, dropped, outbox depth, last error)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kubeguard.api.auth import require_signature

router = APIRouter()


@router.get("/api/sinks", dependencies=[Depends(require_signature)])
async def sinks(request: Request) -> dict[str, Any]:
    return {"sinks": request.app.state.context.publisher.health()}
