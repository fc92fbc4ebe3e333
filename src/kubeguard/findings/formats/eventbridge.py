"""The EventBridge envelope GuardDuty puts around a finding (reference §3.5): ``detail`` is the finding."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

DETAIL_TYPE = "GuardDuty Finding"
SOURCE = "aws.guardduty"


def eventbridge_event(
    finding: Mapping[str, Any], *, now: datetime | None = None, source: str = SOURCE, link: str = ""
) -> dict[str, Any]:
    """One EventBridge event; ``link`` (the console page) is its one entry in ``resources``."""
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": source,
        "account": finding.get("accountId", ""),
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": finding.get("region", ""),
        "resources": [link] if link else [],
        "detail": dict(finding),
    }
