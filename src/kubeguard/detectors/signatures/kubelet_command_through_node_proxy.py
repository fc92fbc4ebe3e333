"""Execution:Kubernetes/KubeletCommandThroughNodeProxy (kubeguard extension).

``nodes/proxy`` forwards a request to a node's kubelet API. Its ``/run``, ``/exec``, ``/attach``,
``/portForward`` and ``/cri`` endpoints run commands in any container on that node, and the API server
logs only a call to ``nodes/proxy``, not a ``pods/exec`` that exec rules and RBAC reviews look for.
Monitoring agents read ``/metrics`` and ``/stats`` through the same subresource; those are not reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import ANY, Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who

FINDING = "Execution:Kubernetes/KubeletCommandThroughNodeProxy"
#: kubelet endpoints that run or attach to processes in containers.
COMMAND_ENDPOINTS = frozenset({"run", "exec", "attach", "portforward", "cri"})


def kubelet_path(request_uri: str) -> str:
    """The kubelet path a ``nodes/proxy`` request forwards to: ``/run/ns/pod/container``."""
    path = unquote(urlsplit(request_uri).path)
    _, marker, rest = path.partition("/proxy")
    return ("/" + rest.lstrip("/")) if marker else ""


class KubeletCommandThroughNodeProxy:
    name = "kubelet-command-through-node-proxy"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = ((ANY, "nodes/proxy"),)

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        path = kubelet_path(event.requestURI)
        endpoint = path.strip("/").split("/", 1)[0].lower()
        if endpoint not in COMMAND_ENDPOINTS:
            return
        yield make_detection(
            FINDING,
            event,
            key=f"nodes/{event.name}",
            description=(
                f"{who(event)} called the kubelet's {path} endpoint on node {event.name} through the "
                f"nodes/proxy subresource on cluster {event.cluster}. That runs a command in a container "
                f"without a pods/exec call in the audit log."
            ),
            parameters=path,
        )
