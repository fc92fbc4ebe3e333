"""Helpers shared by the GuardDuty route modules."""

from __future__ import annotations

from sqlalchemy import Connection

from kubeguard.api.errors import BadRequest
from kubeguard.store import detectors

DETECTOR_NOT_FOUND = "The request is rejected because the input detectorId is not owned by the current account."


def require_detector(conn: Connection, detector_id: str) -> detectors.DetectorRecord:
    record = detectors.get(conn, detector_id)
    if record is None:
        raise BadRequest(DETECTOR_NOT_FOUND)
    return record


def seconds(epoch_ms: int) -> float:
    """rest-json ``timestamp`` members are epoch seconds."""
    return epoch_ms / 1000.0
