"""CreateDetector, ListDetectors, GetDetector, UpdateDetector, DeleteDetector.

As in GuardDuty there is one detector per account and Region: CreateDetector fails while one exists
(a repeated ``clientToken`` returns the same id). New findings are filed under the current detector, and
none are recorded while it is disabled or deleted; the spool still drains, so no audit event waits forever.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from kubeguard.api.auth import context
from kubeguard.api.errors import BadRequest
from kubeguard.api.guardduty.common import require_detector
from kubeguard.api.pagination import page
from kubeguard.api.params import Params, json_body, query_max_results
from kubeguard.store import detectors, ipsets

router = APIRouter()

FREQUENCIES = ("FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS")
FEATURE_NAMES = ("EKS_AUDIT_LOGS",)


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _features(params: Params, status_if_absent: str | None) -> list[dict[str, Any]] | None:
    """Features from ``features`` or from the legacy ``dataSources.kubernetes.auditLogs.enable``."""
    raw = params.data.get("features")
    if raw is not None:
        if not isinstance(raw, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in raw):
            raise BadRequest("features must be a list of {name, status}")
        return [{"name": f["name"], "status": str(f.get("status", "ENABLED"))} for f in raw]
    data_sources = params.mapping("dataSources") or {}
    audit = ((data_sources.get("kubernetes") or {}).get("auditLogs") or {}).get("enable")
    if isinstance(audit, bool):
        return [{"name": "EKS_AUDIT_LOGS", "status": "ENABLED" if audit else "DISABLED"}]
    if status_if_absent is None:
        return None
    return [{"name": "EKS_AUDIT_LOGS", "status": status_if_absent}]


@router.post("/detector")
async def create_detector(request: Request) -> dict[str, Any]:
    params = await json_body(request)
    enable = params.boolean("enable", required=True)
    frequency = params.choice("findingPublishingFrequency", FREQUENCIES, default="SIX_HOURS")
    token = params.string("clientToken", max_length=64)
    features = _features(params, "ENABLED")
    tags = params.tags()
    ctx = context(request)
    with ctx.engine.begin() as conn:
        existing = detectors.list_ids(conn)
        if existing:
            record = detectors.get(conn, existing[0])
            if token and record is not None and record.client_token == token:
                return {"detectorId": record.id, "unprocessedDataSources": {}}
            raise BadRequest("The request is rejected because a detector already exists for the current account.")
        detector_id = detectors.create(
            conn,
            enabled=bool(enable),
            publishing_frequency=frequency or "SIX_HOURS",
            features=features,
            tags=tags,
            client_token=token,
        )
    ctx.detector_id = detector_id
    ctx.detector_enabled = bool(enable)
    return {"detectorId": detector_id, "unprocessedDataSources": {}}


@router.get("/detector")
async def list_detectors(request: Request) -> dict[str, Any]:
    limit = query_max_results(request, high=50, default=50)
    with context(request).engine.connect() as conn:
        ids = detectors.list_ids(conn)
    chunk, token = page(ids, request.query_params.get("nextToken"), limit, "detectors")
    return {"detectorIds": chunk, **({"nextToken": token} if token else {})}


@router.get("/detector/{detector_id}")
async def get_detector(request: Request, detector_id: str) -> dict[str, Any]:
    with context(request).engine.connect() as conn:
        record = require_detector(conn, detector_id)
    audit_status = next((f["status"] for f in record.features if f["name"] == "EKS_AUDIT_LOGS"), "ENABLED")
    updated_seconds = record.updated_at_ms / 1000
    return {
        "createdAt": _iso(record.created_at_ms),
        "updatedAt": _iso(record.updated_at_ms),
        "findingPublishingFrequency": record.publishing_frequency,
        "serviceRole": "",
        "status": record.status,
        "dataSources": {
            "cloudTrail": {"status": "DISABLED"},
            "dnsLogs": {"status": "DISABLED"},
            "flowLogs": {"status": "DISABLED"},
            "s3Logs": {"status": "DISABLED"},
            "kubernetes": {"auditLogs": {"status": audit_status}},
        },
        "features": [{**f, "updatedAt": updated_seconds} for f in record.features],
        "tags": record.tags,
    }


@router.post("/detector/{detector_id}")
async def update_detector(request: Request, detector_id: str) -> dict[str, Any]:
    params = await json_body(request)
    changes: dict[str, Any] = {}
    enable = params.boolean("enable")
    if enable is not None:
        changes["status"] = "ENABLED" if enable else "DISABLED"
    frequency = params.choice("findingPublishingFrequency", FREQUENCIES)
    if frequency is not None:
        changes["publishing_frequency"] = frequency
    features = _features(params, None)
    if features is not None:
        changes["features"] = features
    ctx = context(request)
    with ctx.engine.begin() as conn:
        require_detector(conn, detector_id)
        detectors.modify(conn, detector_id, **changes)
    if enable is not None and detector_id == ctx.detector_id:
        ctx.detector_enabled = enable
    return {}


@router.delete("/detector/{detector_id}")
async def delete_detector(request: Request, detector_id: str) -> dict[str, Any]:
    ctx = context(request)
    with ctx.engine.begin() as conn:
        require_detector(conn, detector_id)
        set_ids = [r.id for kind in (ipsets.THREAT, ipsets.TRUSTED) for r in ipsets.list_for(conn, detector_id, kind)]
        detectors.remove(conn, detector_id)
    # Its ThreatIntelSets and IPSets went with it: they must stop applying to detection now, not at restart.
    for set_id in set_ids:
        ctx.intel.deactivate(set_id)
    if detector_id == ctx.detector_id:
        ctx.detector_id = None
    return {}
