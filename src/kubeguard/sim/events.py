"""Turn one API request into the audit Event(s) an API server would log for it.

The audit policy imitated is the EKS/GKE one: ``Metadata`` for secrets, configmaps, token requests and
non-resource URLs (bodies there would leak credentials), ``Request`` for reads, ``RequestResponse`` for
writes. Long-running requests (watch, exec, attach, port-forward) log ``ResponseStarted`` when the
connection is upgraded or the stream opens and ``ResponseComplete`` when it closes.

Events built here share their nested ``user`` and ``sourceIPs`` values with other events of the same
caller: they are read-only records, and sharing is what keeps generation fast.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from kubeguard.sim.clock import MINUTE, SECOND, rfc3339
from kubeguard.sim.identities import uid
from kubeguard.sim.objects import stored

#: (request_time, stage_time, event): what actors emit; see :func:`kubeguard.sim.clock.in_time_order`.
Stamped = tuple[int, int, dict[str, Any]]

_METADATA_RESOURCES = frozenset({"secrets", "configmaps", "tokenreviews"})
_READS = frozenset({"get", "list", "watch"})
_STREAMS = frozenset({"exec", "attach", "portforward"})
_STATUS_TEXT = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists"}


@dataclass(slots=True)
class Caller:
    """Who makes a request, from where, with what client: the part of an Event an actor keeps."""

    user: dict[str, Any]
    ips: list[str]
    agent: str
    #: The ``authorization.k8s.io/reason`` annotation for allowed requests.
    reason: str = ""
    impersonated: dict[str, Any] | None = None


@dataclass(slots=True)
class Request:
    """The parts of one API request that change from call to call."""

    verb: str
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    group: str = ""
    version: str = "v1"
    query: str = ""
    #: For non-resource requests (``/api``, ``/version``): the path, and no objectRef.
    path: str = ""
    code: int = 0
    request_object: Any = None
    #: A response body; for creates and updates :meth:`EventFactory.emit` stores the request body.
    response_object: Any = None
    #: How long the server took (or the stream stayed open); drawn when zero.
    duration: int = 0
    message: str = ""


def level_for(request: Request) -> str:
    if request.path or request.resource in _METADATA_RESOURCES or request.subresource == "token":
        return "Metadata"
    if request.verb in _READS:
        return "Request"
    return "RequestResponse"


def request_uri(request: Request) -> str:
    if request.path:
        uri = request.path
    else:
        parts = ["/api/v1" if not request.group else f"/apis/{request.group}/{request.version}"]
        if request.namespace and request.resource != "namespaces":
            parts.append(f"/namespaces/{request.namespace}")
        parts.append(f"/{request.resource}")
        if request.name and request.verb != "create" or request.subresource:
            parts.append(f"/{request.name}")
        if request.subresource:
            parts.append(f"/{request.subresource}")
        uri = "".join(parts)
    return f"{uri}?{request.query}" if request.query else uri


def default_code(request: Request) -> int:
    if request.subresource in _STREAMS:
        return 101
    if request.verb == "create" and request.subresource not in ("binding",):
        return 201
    return 200


class EventFactory:
    """Builds Events for one actor, drawing auditIDs and latencies from the actor's own generator."""

    __slots__ = ("rng",)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def emit(self, at: int, caller: Caller, request: Request) -> list[Stamped]:
        """The Event(s) for ``request`` received at ``at`` (microseconds): one, or two for streams."""
        rng = self.rng
        code = request.code or default_code(request)
        level = level_for(request)
        status: dict[str, Any] = {"metadata": {}, "code": code}
        if code >= 400:
            status = {"metadata": {}, "status": "Failure", "message": request.message,
                      "reason": _STATUS_TEXT.get(code, "BadRequest"), "code": code}
        event: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": uid(rng),
            "stage": "ResponseComplete",
            "requestURI": request_uri(request),
            "verb": request.verb,
            "user": caller.user,
        }
        if caller.impersonated is not None:
            event["impersonatedUser"] = caller.impersonated
        event["sourceIPs"] = caller.ips
        event["userAgent"] = caller.agent
        if not request.path:
            event["objectRef"] = self._object_ref(request)
        event["responseStatus"] = status
        if level != "Metadata":
            if request.request_object is not None:
                event["requestObject"] = request.request_object
            if level == "RequestResponse" and code < 300:
                response = request.response_object
                if response is None and isinstance(request.request_object, dict) and "kind" in request.request_object:
                    response = stored(request.request_object, uid(rng), at // 1000, at)
                if response is not None:
                    event["responseObject"] = response
            elif level == "RequestResponse" and code >= 400:
                event["responseObject"] = {"kind": "Status", "apiVersion": "v1", **status}
        event["requestReceivedTimestamp"] = rfc3339(at)
        if code in (401,):
            decision = None
        elif code == 403:
            decision = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
        else:
            decision = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": caller.reason}
        if request.verb == "watch" or (request.subresource in _STREAMS and code == 101):
            return self._stream(at, event, decision, request.duration)
        done = at + (request.duration or rng.randrange(400, 6000))
        event["stageTimestamp"] = rfc3339(done)
        if decision is not None:
            event["annotations"] = decision
        return [(at, done, event)]

    def _stream(self, at: int, event: dict[str, Any], annotations: dict[str, Any] | None,
                duration: int) -> list[Stamped]:
        rng = self.rng
        started_at = at + rng.randrange(150, 900)
        closed_at = at + (duration or rng.randrange(5 * SECOND, 5 * MINUTE))
        started = {**event, "stage": "ResponseStarted", "stageTimestamp": rfc3339(started_at)}
        complete = {**event, "stageTimestamp": rfc3339(closed_at)}
        if annotations is not None:
            started["annotations"] = annotations
            complete["annotations"] = annotations
        return [(at, started_at, started), (at, closed_at, complete)]

    @staticmethod
    def _object_ref(request: Request) -> dict[str, Any]:
        ref: dict[str, Any] = {"resource": request.resource}
        if request.namespace:
            ref["namespace"] = request.namespace
        if request.name:
            ref["name"] = request.name
        if request.group:
            ref["apiGroup"] = request.group
        ref["apiVersion"] = request.version
        if request.subresource:
            ref["subresource"] = request.subresource
        return ref
