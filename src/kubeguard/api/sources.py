"""``GET /api/sources``: what each live source has read, rejected and retried, and how far behind it is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kubeguard.api.auth import context, require_signature

router = APIRouter()


@router.get("/api/sources", dependencies=[Depends(require_signature)])
async def list_sources(request: Request) -> dict[str, Any]:
    manager = context(request).sources
    sources = manager.snapshot() if manager is not None else []
    return {"sources": sources, "count": len(sources)}
