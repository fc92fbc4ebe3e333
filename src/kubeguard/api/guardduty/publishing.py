"""Create/Describe/List/Update/DeletePublishingDestination: GuardDuty's S3 export of findings.

Only ``destinationType`` S3 exists (as in GuardDuty). The destination starts exporting at once; its status
reads ``UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY`` with ``publishingFailureStartTimestamp`` while the
bucket cannot be written (the objects wait in the outbox meanwhile) and ``PUBLISHING`` otherwise.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kubeguard.api.auth import context
from kubeguard.api.errors import BadRequest
from kubeguard.api.guardduty.common import require_detector
from kubeguard.api.pagination import page
from kubeguard.api.params import json_body, query_max_results
from kubeguard.sinks import destinations
from kubeguard.sinks.s3 import parse_bucket_arn

router = APIRouter()
BASE = "/detector/{detector_id}/publishingDestination"


def _properties(params: Any, required: bool) -> tuple[str, str] | None:
    properties = params.mapping("destinationProperties")
    if properties is None:
        if required:
            raise BadRequest("destinationProperties is required")
        return None
    arn = properties.get("destinationArn")
    kms = properties.get("kmsKeyArn", "")
    if not isinstance(arn, str) or not isinstance(kms, str):
        raise BadRequest("destinationProperties.destinationArn and kmsKeyArn must be strings")
    try:
        parse_bucket_arn(arn)
    except ValueError as error:
        raise BadRequest(str(error)) from error
    return arn, kms


def _status(request: Request, record: destinations.DestinationRecord) -> tuple[str, int]:
    """The stored status, or the failure the sink is in right now, with when it started (epoch ms)."""
    if record.status == "STOPPED":
        return record.status, 0
    for route in context(request).publisher.routes():
        if route.name == record.sink_name and route.health.failing_since:
            return "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", int(route.health.failing_since * 1000)
    return "PUBLISHING", 0


@router.post(BASE)
async def create(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    if params.choice("destinationType", ("S3",)) is None:
        raise BadRequest("destinationType is required (S3)")
    arn, kms = _properties(params, required=True) or ("", "")
    params.string("clientToken", max_length=64)
    tags = params.tags()
    ctx = context(request)
    with ctx.engine.begin() as conn:
        require_detector(conn, detector_id)
        record = destinations.create(conn, detector_id, arn, kms, tags)
    await run_in_threadpool(
        destinations.start_destination, ctx.engine, ctx.publisher, ctx.settings, ctx.options, ctx.metrics, record
    )
    return {"destinationId": record.id}


@router.get(BASE)
async def list_destinations(request: Request, detector_id: str) -> dict[str, Any]:
    limit = query_max_results(request, high=50, default=50)
    with context(request).engine.connect() as conn:
        require_detector(conn, detector_id)
        records = destinations.list_for(conn, detector_id)
    items = [
        {"destinationId": r.id, "destinationType": r.destination_type, "status": _status(request, r)[0]}
        for r in records
    ]
    chunk, token = page(items, request.query_params.get("nextToken"), limit, ["publishingDestination", detector_id])
    return {"destinations": chunk, **({"nextToken": token} if token else {})}


def _require(request: Request, detector_id: str, destination_id: str) -> destinations.DestinationRecord:
    with context(request).engine.connect() as conn:
        require_detector(conn, detector_id)
        record = destinations.get(conn, detector_id, destination_id)
    if record is None:
        raise BadRequest(f"no publishing destination with id {destination_id}")
    return record


@router.get(BASE + "/{destination_id}")
async def describe(request: Request, detector_id: str, destination_id: str) -> dict[str, Any]:
    record = _require(request, detector_id, destination_id)
    status, failing_since = _status(request, record)
    properties = {"destinationArn": record.destination_arn}
    if record.kms_key_arn:
        properties["kmsKeyArn"] = record.kms_key_arn
    return {
        "destinationId": record.id,
        "destinationType": record.destination_type,
        "status": status,
        "publishingFailureStartTimestamp": failing_since,
        "destinationProperties": properties,
        "tags": record.tags,
    }


@router.post(BASE + "/{destination_id}")
async def update(request: Request, detector_id: str, destination_id: str) -> dict[str, Any]:
    params = await json_body(request)
    record = _require(request, detector_id, destination_id)
    changed = _properties(params, required=False)
    if changed is None:
        return {}
    ctx = context(request)
    with ctx.engine.begin() as conn:
        destinations.modify(conn, record.id, destination_arn=changed[0], kms_key_arn=changed[1])
    record.destination_arn, record.kms_key_arn = changed
    ctx.publisher.remove(record.sink_name, discard_backlog=False)
    await run_in_threadpool(
        destinations.start_destination, ctx.engine, ctx.publisher, ctx.settings, ctx.options, ctx.metrics, record
    )
    return {}


@router.delete(BASE + "/{destination_id}")
async def delete(request: Request, detector_id: str, destination_id: str) -> dict[str, Any]:
    record = _require(request, detector_id, destination_id)
    ctx = context(request)
    with ctx.engine.begin() as conn:
        destinations.remove(conn, record.id)
    await run_in_threadpool(ctx.publisher.remove, record.sink_name)
    return {}


