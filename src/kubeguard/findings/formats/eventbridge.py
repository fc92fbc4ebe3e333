"""The EventBridge envelope GuardDuty puts around a finding (reference §3.5): ``detail`` is the finding."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

DETAIL_TYPE = "GuardDuty Finding"
SOURCE = "aws.guardduty"
#: Event ids are UUIDv5 of (finding id, updatedAt, count) in this namespace: every sink and every retry of
#: one occurrence sends the same id, so a receiver can drop the duplicates at-least-once delivery brings.
EVENT_NAMESPACE = uuid.UUID("5b0c2a4e-8f1d-4c3a-9e57-2f6d8b1a7c90")


def eventbridge_event(
    finding: Mapping[str, Any], *, now: datetime | None = None, source: str = SOURCE, link: str = ""
) -> dict[str, Any]:
    """One EventBridge event; ``link`` (the console page) is its one entry in ``resources``."""
    moment = now or _updated_at(finding) or datetime.now(UTC)
    occurrence = f"{finding.get('id', '')}|{finding.get('updatedAt', '')}|{(finding.get('service') or {}).get('count')}"
    return {
        "version": "0",
        "id": str(uuid.uuid5(EVENT_NAMESPACE, occurrence)),
        "detail-type": DETAIL_TYPE,
        "source": source,
        "account": finding.get("accountId", ""),
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": finding.get("region", ""),
        "resources": [link] if link else [],
        "detail": dict(finding),
    }


def _updated_at(finding: Mapping[str, Any]) -> datetime | None:
    """The occurrence's time (the finding's ``updatedAt``), so a retried event says when it happened."""
    text = finding.get("updatedAt")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
