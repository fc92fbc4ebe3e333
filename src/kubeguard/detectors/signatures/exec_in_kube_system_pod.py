"""Execution:Kubernetes/ExecInKubeSystemPod — a command run through the exec API in kube-system.

kube-system pods run with the cluster's most powerful identities; a shell in one is rarely routine.
Like every detector it sees only what happened (``detectors/effect.py``): an exec or attach counts once
the API server upgraded the connection (101), at whichever stage it logged that; an exec answered 400
(no node) or 404 (no such pod or container) ran nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who

FINDING = "Execution:Kubernetes/ExecInKubeSystemPod"
SYSTEM_NAMESPACE = "kube-system"


def exec_command(request_uri: str) -> str:
    """The command an exec request runs, from its repeated ``command`` query parameters."""
    query = parse_qs(urlsplit(request_uri).query)
    return " ".join(query.get("command", []))


#: Every exec and attach call, over SPDY (create) and websockets (get).
EXEC_WANTS = (("create", "pods/exec"), ("get", "pods/exec"), ("create", "pods/attach"), ("get", "pods/attach"))


def exec_detection(finding: str, event: AuditEvent) -> Detection:
    """An exec or attach finding of either type, keyed by pod, with the command decoded."""
    command = exec_command(event.requestURI)
    return make_detection(
        finding,
        event,
        key=f"{event.namespace}/{event.name}",
        description=(
            f"{who(event)} ran {command or 'a command'!r} through the {event.subresource} API in pod "
            f"{event.namespace}/{event.name} on cluster {event.cluster}."
        ),
        parameters=command,
    )


class ExecInKubeSystemPod:
    name = "exec-in-kube-system-pod"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = EXEC_WANTS

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        if event.namespace == SYSTEM_NAMESPACE:
            yield exec_detection(FINDING, event)
