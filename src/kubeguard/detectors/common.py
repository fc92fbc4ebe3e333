"""Small pieces every detector uses: making a Detection from the catalogue, naming the caller."""

from __future__ import annotations

from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection
from kubeguard.findings.types import get as finding_type


def who(event: AuditEvent) -> str:
    """The caller as a description reads it; an impersonating caller is named with its target."""
    user = event.user.username or "<unknown>"
    if event.impersonatedUser is not None and event.impersonatedUser.username:
        return f"{user} (impersonating {event.impersonatedUser.username})"
    return user


def api_call(event: AuditEvent) -> str:
    """``create pods/exec`` or ``get /version``: the call as a person would say it."""
    if event.resource:
        target = f"{event.resource}/{event.subresource}" if event.subresource else event.resource
    else:
        target = event.requestURI.split("?", 1)[0]
    return f"{event.verb} {target}"


def make_detection(
    type_name: str,
    event: AuditEvent,
    *,
    key: str,
    description: str,
    severity: float | None = None,
    **fields: Any,
) -> Detection:
    catalogued = finding_type(type_name)
    return Detection(
        finding_type=type_name,
        severity=catalogued.severity if severity is None else severity,
        event=event,
        key=key,
        title=catalogued.title,
        description=description,
        **fields,
    )
