"""CreateFilter, ListFilters, GetFilter, UpdateFilter, DeleteFilter.

A filter with action ARCHIVE is a suppression rule: the recorder archives matching new findings and does
not publish them. Only filters accept the ``matches``/``notMatches`` wildcard operators.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from kubeguard.api.auth import context
from kubeguard.api.errors import BadRequest
from kubeguard.api.guardduty.common import require_detector, seconds
from kubeguard.api.guardduty.findings import criterion_of
from kubeguard.api.pagination import page
from kubeguard.api.params import Params, json_body, query_max_results
from kubeguard.store import filters
from kubeguard.store.database import now_ms

router = APIRouter()

FILTER_NAME = re.compile(r"[A-Za-z0-9._-]{3,64}")
ACTIONS = ("NOOP", "ARCHIVE")
MAX_FILTERS = 100


def _criterion(params: Params, *, required: bool) -> dict[str, dict[str, Any]] | None:
    if not params.has("findingCriteria"):
        if required:
            raise BadRequest("findingCriteria is required")
        return None
    criterion = criterion_of(params, allow_wildcards=True)
    if not criterion:
        raise BadRequest("findingCriteria.criterion must name at least one field")
    return criterion


@router.post("/detector/{detector_id}/filter")
async def create_filter(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    name = params.string("name", required=True, max_length=64) or ""
    if not FILTER_NAME.fullmatch(name):
        raise BadRequest("name must be 3-64 characters of letters, digits, '.', '_' and '-'")
    description = params.string("description", default="", max_length=512) or ""
    action = params.choice("action", ACTIONS, default="NOOP") or "NOOP"
    criterion = _criterion(params, required=True) or {}
    params.string("clientToken", max_length=64)
    tags = params.tags()
    with context(request).engine.begin() as conn:
        require_detector(conn, detector_id)
        existing = filters.get(conn, detector_id, name)
        if existing is not None:
            if existing.criterion == criterion and existing.action == action:
                return {"name": name}  # an idempotent retry
            raise BadRequest(f"a filter named {name} already exists")
        count = filters.count(conn, detector_id)
        if count >= MAX_FILTERS:
            raise BadRequest(f"a detector may have at most {MAX_FILTERS} filters")
        rank = params.integer("rank", low=1, high=100, default=min(count + 1, 100)) or 1
        now = now_ms()
        filters.create(
            conn,
            filters.FilterRecord(detector_id, name, description, action, rank, criterion, tags, 1, now, now),
        )
    return {"name": name}


@router.get("/detector/{detector_id}/filter")
async def list_filters(request: Request, detector_id: str) -> dict[str, Any]:
    limit = query_max_results(request, high=50, default=50)
    with context(request).engine.connect() as conn:
        require_detector(conn, detector_id)
        names = [record.name for record in filters.in_rank_order(conn, detector_id)]
    chunk, token = page(names, request.query_params.get("nextToken"), limit, ["filters", detector_id])
    return {"filterNames": chunk, **({"nextToken": token} if token else {})}


def _require_filter(conn: Any, detector_id: str, name: str) -> filters.FilterRecord:
    record = filters.get(conn, detector_id, name)
    if record is None:
        raise BadRequest(f"no filter named {name}")
    return record


@router.get("/detector/{detector_id}/filter/{name}")
async def get_filter(request: Request, detector_id: str, name: str) -> dict[str, Any]:
    with context(request).engine.connect() as conn:
        require_detector(conn, detector_id)
        record = _require_filter(conn, detector_id, name)
    return {
        "name": record.name,
        "description": record.description,
        "action": record.action,
        "rank": record.rank,
        "findingCriteria": {"criterion": record.criterion},
        "tags": record.tags,
        "createdAt": seconds(record.created_at_ms),
        "updatedAt": seconds(record.updated_at_ms),
        "version": record.version,
    }


@router.post("/detector/{detector_id}/filter/{name}")
async def update_filter(request: Request, detector_id: str, name: str) -> dict[str, Any]:
    params = await json_body(request)
    changes: dict[str, Any] = {}
    description = params.string("description", max_length=512)
    if description is not None:
        changes["description"] = description
    action = params.choice("action", ACTIONS)
    if action is not None:
        changes["action"] = action
    rank = params.integer("rank", low=1, high=100)
    if rank is not None:
        changes["rank"] = rank
    criterion = _criterion(params, required=False)
    if criterion is not None:
        changes["criterion"] = criterion
    with context(request).engine.begin() as conn:
        require_detector(conn, detector_id)
        _require_filter(conn, detector_id, name)
        filters.modify(conn, detector_id, name, **changes)
    return {"name": name}


@router.delete("/detector/{detector_id}/filter/{name}")
async def delete_filter(request: Request, detector_id: str, name: str) -> dict[str, Any]:
    with context(request).engine.begin() as conn:
        require_detector(conn, detector_id)
        if not filters.remove(conn, detector_id, name):
            raise BadRequest(f"no filter named {name}")
    return {}
