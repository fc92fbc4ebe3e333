"""Tell an audit Event apart from the other lines a live source meets, and say why a line is rejected.

An EKS log group and an API server's log directory hold more than audit events: plain API-server log
lines, CloudWatch's ``[Truncated...]`` stand-ins for messages over its size limit, half-written lines.
Each is a counted reject with a reason; none stops the source.
"""

from __future__ import annotations

import msgspec

from kubeguard.audit.event import AuditEvent

#: CloudWatch Logs replaces the tail of a message over its size limit with this marker.
TRUNCATED_MARKER = b"[Truncated...]"

REJECT_TRUNCATED = "truncated"
REJECT_NOT_JSON = "not_json"
REJECT_NOT_AUDIT_EVENT = "not_audit_event"
REJECT_TOO_LONG = "too_long"

_decoder = msgspec.json.Decoder(AuditEvent)


def read_event(message: bytes) -> AuditEvent | str:
    """The Event in ``message``, or the reason it holds none."""
    stripped = message.strip()
    if stripped.endswith(TRUNCATED_MARKER) or stripped.startswith(TRUNCATED_MARKER):
        return REJECT_TRUNCATED
    if not stripped.startswith(b"{"):
        return REJECT_NOT_JSON
    try:
        event = _decoder.decode(stripped)
    except msgspec.ValidationError:
        return REJECT_NOT_AUDIT_EVENT
    except (msgspec.DecodeError, RecursionError):
        return REJECT_NOT_JSON
    if not (event.auditID or event.verb or event.requestURI):
        return REJECT_NOT_AUDIT_EVENT
    return event


def audit_key(event: AuditEvent) -> str | None:
    """What identifies one stage of one request across copies of it; None when the event has no auditID."""
    return f"{event.auditID}/{event.stage}"[:200] if event.auditID else None
