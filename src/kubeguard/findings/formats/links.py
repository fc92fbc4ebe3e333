"""Deep links from a message to the finding's page in the kubeguard console (``[serve] public_url``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote


def console_link(public_url: str, finding: Mapping[str, Any]) -> str:
    """``{public_url}/console/findings/{id}``, or "" when no public URL is configured."""
    if not public_url:
        return ""
    return f"{public_url.rstrip('/')}/console/findings/{quote(str(finding.get('id', '')), safe='')}"
