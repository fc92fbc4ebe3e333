"""ThreatIntelSet and IPSet CRUD: two resources with one shape, routed by one factory.

``location`` is a file path, a ``file://`` URL or an ``https://`` URL. Activating a set loads its list at
once (a list that cannot be read is a BadRequest naming the reason) and reloads the intel detection uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.errors import BadRequest
from kubeguard.api.guardduty.common import require_detector
from kubeguard.api.intel_sets import IntelLoadError
from kubeguard.api.pagination import page
from kubeguard.api.params import json_body, query_max_results
from kubeguard.store import ipsets

FORMATS = ("TXT", "STIX", "OTX_CSV", "ALIEN_VAULT", "PROOF_POINT", "FIRE_EYE")
MAX_SETS = 6
#: Plain http:// is refused: anyone on the path could rewrite a list that decides what is trusted.
LOCATION_SCHEMES = ("file://", "https://", "/", "./", "../")


@dataclass(frozen=True, slots=True)
class SetKind:
    kind: str
    path: str
    id_member: str
    ids_member: str
    label: str


THREAT_INTEL = SetKind(ipsets.THREAT, "threatintelset", "threatIntelSetId", "threatIntelSetIds", "ThreatIntelSet")
TRUSTED = SetKind(ipsets.TRUSTED, "ipset", "ipSetId", "ipSetIds", "IPSet")


def _check_location(location: str) -> None:
    if not location.startswith(LOCATION_SCHEMES) and "://" in location:
        raise BadRequest("location must be a file path, a file:// URL or an https:// URL")


async def _activate(request: Request, record: ipsets.IpSetRecord) -> None:
    try:
        await run_in_threadpool(context(request).intel.activate, record)
    except IntelLoadError as exc:
        raise BadRequest(f"the list at {record.location} could not be loaded: {exc}") from exc


def build_router(kind: SetKind) -> APIRouter:
    router = APIRouter()
    base = f"/detector/{{detector_id}}/{kind.path}"

    @router.post(base)
    async def create(request: Request, detector_id: str) -> dict[str, Any]:
        params = await json_body(request)
        name = params.string("name", required=True, max_length=300) or ""
        if not name:
            raise BadRequest("name must not be empty")
        fmt = params.choice("format", FORMATS)
        if fmt is None:
            raise BadRequest("format is required")
        location = params.string("location", required=True, max_length=2048) or ""
        _check_location(location)
        activate = params.boolean("activate", required=True)
        params.string("clientToken", max_length=64)
        owner = params.string("expectedBucketOwner", max_length=12)
        tags = params.tags()
        ctx = context(request)
        status = "ACTIVE" if activate else "INACTIVE"
        with ctx.engine.begin() as conn:
            require_detector(conn, detector_id)
            if len(ipsets.list_for(conn, detector_id, kind.kind)) >= MAX_SETS:
                raise BadRequest(f"a detector may have at most {MAX_SETS} {kind.label}s")
            set_id = ipsets.create(
                conn,
                detector_id=detector_id,
                kind=kind.kind,
                name=name,
                format=fmt,
                location=location,
                status=status,
                tags=tags,
                expected_bucket_owner=owner,
            )
        if activate:
            record = ipsets.IpSetRecord(set_id, detector_id, kind.kind, name, fmt, location, status, tags, owner)
            try:
                await _activate(request, record)
            except BadRequest:
                with ctx.engine.begin() as conn:
                    ipsets.remove(conn, set_id)
                raise
        return {kind.id_member: set_id}

    @router.get(base)
    async def list_sets(request: Request, detector_id: str) -> dict[str, Any]:
        limit = query_max_results(request, high=50, default=50)
        with context(request).engine.connect() as conn:
            require_detector(conn, detector_id)
            ids = [record.id for record in ipsets.list_for(conn, detector_id, kind.kind)]
        chunk, token = page(ids, request.query_params.get("nextToken"), limit, [kind.path, detector_id])
        return {kind.ids_member: chunk, **({"nextToken": token} if token else {})}

    def _require(conn: Any, detector_id: str, set_id: str) -> ipsets.IpSetRecord:
        require_detector(conn, detector_id)
        record = ipsets.get(conn, detector_id, kind.kind, set_id)
        if record is None:
            raise BadRequest(f"no {kind.label} with id {set_id}")
        return record

    @router.get(base + "/{set_id}")
    async def get(request: Request, detector_id: str, set_id: str) -> dict[str, Any]:
        with context(request).engine.connect() as conn:
            record = _require(conn, detector_id, set_id)
        body: dict[str, Any] = {
            "name": record.name,
            "format": record.format,
            "location": record.location,
            "status": record.status,
            "tags": record.tags,
        }
        if record.expected_bucket_owner:
            body["expectedBucketOwner"] = record.expected_bucket_owner
        return body

    @router.post(base + "/{set_id}")
    async def update(request: Request, detector_id: str, set_id: str) -> dict[str, Any]:
        params = await json_body(request)
        ctx = context(request)
        with ctx.engine.connect() as conn:
            record = _require(conn, detector_id, set_id)
        changes: dict[str, Any] = {}
        name = params.string("name", max_length=300)
        if name:
            changes["name"] = record.name = name
        location = params.string("location", max_length=2048)
        if location:
            _check_location(location)
            changes["location"] = record.location = location
        owner = params.string("expectedBucketOwner", max_length=12)
        if owner is not None:
            changes["expected_bucket_owner"] = owner
        activate = params.boolean("activate")
        active = record.status == "ACTIVE" if activate is None else activate
        if active:
            await _activate(request, record)
        else:
            ctx.intel.deactivate(set_id)
        changes["status"] = "ACTIVE" if active else "INACTIVE"
        with ctx.engine.begin() as conn:
            ipsets.modify(conn, set_id, **changes)
        return {}

    @router.delete(base + "/{set_id}")
    async def delete(request: Request, detector_id: str, set_id: str) -> dict[str, Any]:
        ctx = context(request)
        with ctx.engine.begin() as conn:
            _require(conn, detector_id, set_id)
            ipsets.remove(conn, set_id)
        ctx.intel.deactivate(set_id)
        return {}

    return router
