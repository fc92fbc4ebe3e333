"""Where a Sigma field name points in an audit event, and reading it.

Rules name fields by the audit event's own JSON paths (``verb``, ``objectRef.resource``,
``user.username``, ``requestObject.spec.hostNetwork``, ``annotations.authorization.k8s.io/decision``).
A path is resolved once, when the rule is compiled, into an accessor; a path kubeguard cannot read is a
load error, so a typo (``objectref.resource``) is caught before the rule silently never matches.

Accessors return every value at the path as a tuple: lists are walked element by element at every
step (``requestObject.spec.containers.securityContext.privileged`` reads each container), an absent
field is an empty tuple and an explicit JSON null is ``(None,)``. Request and response bodies, user extras
and annotations stay undecoded in :class:`~kubeguard.audit.event.AuditEvent`; :class:`EventView` decodes
each at most once per event, and only when a rule that reaches into it is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from kubeguard.audit.event import AuditEvent

Values = tuple[Any, ...]
Accessor = Callable[["EventView"], Values]

_json = msgspec.json.Decoder()


class FieldError(ValueError):
    """A field path that is not part of an audit event as kubeguard reads it."""


class EventView:
    """One event as rules read it: the typed event plus its bodies, each decoded on first use."""

    __slots__ = ("event", "_bodies", "_everything")

    def __init__(self, event: AuditEvent) -> None:
        self.event = event
        self._bodies: dict[str, Any] = {}
        self._everything: list[str] | None = None

    def body(self, name: str) -> Any:
        """``requestObject``, ``responseObject``, ``annotations`` or ``user.extra`` as plain JSON."""
        try:
            return self._bodies[name]
        except KeyError:
            pass
        raw = _RAW_SOURCES[name](self.event)
        data = bytes(raw)
        try:
            value = _json.decode(data) if data else _ABSENT
        except msgspec.DecodeError:
            value = _ABSENT
        self._bodies[name] = value
        return value

    def strings(self) -> list[str]:
        """Every string anywhere in the event, for Sigma keyword (field-less) searches."""
        if self._everything is None:
            document = msgspec.json.decode(msgspec.json.encode(self.event))
            found: list[str] = []
            _collect_strings(document, found)
            self._everything = found
        return self._everything


class _Absent:
    """Marks a body the event does not carry (distinct from a JSON null)."""


_ABSENT = _Absent()

_RAW_SOURCES: dict[str, Callable[[AuditEvent], msgspec.Raw]] = {
    "requestObject": lambda e: e.requestObject,
    "responseObject": lambda e: e.responseObject,
    "annotations": lambda e: e.annotations,
    "user.extra": lambda e: e.user.extra,
    "impersonatedUser.extra": lambda e: e.impersonatedUser.extra if e.impersonatedUser else msgspec.Raw(b""),
}


def _collect_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, out)


def _scalar(read: Callable[[AuditEvent], Any]) -> Accessor:
    """A typed field that is always present in the model; the empty string counts as absent."""

    def access(view: EventView) -> Values:
        value = read(view.event)
        return () if value == "" or value is None else (value,)

    return access


def _listed(read: Callable[[AuditEvent], list[str] | None]) -> Accessor:
    def access(view: EventView) -> Values:
        return tuple(read(view.event) or ())

    return access


def _code(view: EventView) -> Values:
    status = view.event.responseStatus
    return (status.code,) if status is not None and status.code else ()


def walk(document: Any, parts: tuple[str, ...]) -> Values:
    """Every value at ``parts`` below ``document``; lists fan out, keys may themselves contain dots."""
    if isinstance(document, _Absent):
        return ()
    if not parts:
        if isinstance(document, list):
            return tuple(item for element in document for item in walk(element, ()))
        return (document,)
    if isinstance(document, list):
        return tuple(item for element in document for item in walk(element, parts))
    if not isinstance(document, dict):
        return ()
    head = parts[0]
    if head in document:
        return walk(document[head], parts[1:])
    for end in range(2, len(parts) + 1):  # labels and annotations: app.kubernetes.io/name
        joined = ".".join(parts[:end])
        if joined in document:
            return walk(document[joined], parts[end:])
    return ()


def _in_body(name: str, parts: tuple[str, ...]) -> Accessor:
    def access(view: EventView) -> Values:
        return walk(view.body(name), parts)

    return access


def _keyed(name: str, key: str) -> Accessor:
    """Maps whose keys contain dots and slashes (annotations, user extras): the rest of the path is one key."""

    def access(view: EventView) -> Values:
        document = view.body(name)
        if not isinstance(document, dict) or key not in document:
            return ()
        return walk(document[key], ())

    return access


def _user(member: str, pick: Callable[[AuditEvent], Any]) -> Accessor:
    if member == "groups":
        return _listed(lambda e: (pick(e).groups if pick(e) is not None else None))
    return _scalar(lambda e: (getattr(pick(e), member) if pick(e) is not None else None))


_TOP_LEVEL: dict[str, Accessor] = {
    "auditID": _scalar(lambda e: e.auditID),
    "stage": _scalar(lambda e: e.stage),
    "verb": _scalar(lambda e: e.verb),
    "requestURI": _scalar(lambda e: e.requestURI),
    "userAgent": _scalar(lambda e: e.userAgent),
    "sourceIPs": _listed(lambda e: e.sourceIPs),
    "requestReceivedTimestamp": _scalar(lambda e: e.requestReceivedTimestamp),
    "stageTimestamp": _scalar(lambda e: e.stageTimestamp),
    "timestamp": _scalar(lambda e: e.timestamp),
    "level": _scalar(lambda e: e.level),
    "cluster": _scalar(lambda e: e.cluster),
}

_OBJECT_REF = ("resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion", "subresource")
_STATUS = ("code", "status", "reason", "message")
_USER = ("username", "uid", "groups")

_SUMMARY = (
    "verb, stage, requestURI, userAgent, sourceIPs, objectRef.*, responseStatus.*, user.*, impersonatedUser.*, "
    "requestObject.PATH, responseObject.PATH, annotations.KEY (docs/rules.md lists them)"
)


def _ref_member(member: str) -> Callable[[AuditEvent], Any]:
    def read(event: AuditEvent) -> Any:
        ref = event.objectRef
        value = getattr(ref, member) if ref is not None else None
        return value if value != "" else None

    return read


def _status_member(member: str) -> Callable[[AuditEvent], Any]:
    def read(event: AuditEvent) -> Any:
        status = event.responseStatus
        value = getattr(status, member) if status is not None else None
        return value if value not in ("", 0) else None

    return read


_SINGLE: dict[str, Callable[[AuditEvent], Any]] = {
    **{name: (lambda e, n=name: getattr(e, n) or None)
       for name in ("auditID", "stage", "verb", "requestURI", "userAgent", "requestReceivedTimestamp",
                    "stageTimestamp", "timestamp", "level", "cluster")},
    **{f"objectRef.{m}": _ref_member(m) for m in _OBJECT_REF},
    **{f"responseStatus.{m}": _status_member(m) for m in _STATUS},
    "user.username": lambda e: e.user.username or None,
    "user.uid": lambda e: e.user.uid or None,
    "impersonatedUser.username": lambda e: e.impersonatedUser.username or None if e.impersonatedUser else None,
    "impersonatedUser.uid": lambda e: e.impersonatedUser.uid or None if e.impersonatedUser else None,
}


def single_reader(path: str) -> Callable[[AuditEvent], Any] | None:
    """For fields that hold one scalar in the typed event: a reader of it (None when absent), else None.

    The hot path: most rule conditions test ``verb``, ``objectRef.*`` or ``user.username``, and reading
    them straight from the event avoids building a tuple per test.
    """
    return _SINGLE.get(path)


#: Where a pod spec sits in the bodies of the objects that carry one (pods, workloads, CronJobs).
_POD_SPECS = (("spec",), ("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _union(paths: list[tuple[str, ...]]) -> Accessor:
    def access(view: EventView) -> Values:
        body = view.body("requestObject")
        return tuple(value for parts in paths for value in walk(body, parts))

    return access


#: SigmaHQ's kubernetes/audit rules use a few names that are not audit event paths; they mean these.
SIGMAHQ_ALIASES: dict[str, Accessor] = {
    "apiGroup": _scalar(lambda e: e.objectRef.apiGroup if e.objectRef is not None else None),
    "hostPath": _union([(*spec, "volumes", "hostPath", "path") for spec in _POD_SPECS]),
    "capabilities": _union(
        [(*spec, kind, "securityContext", "capabilities", "add") for spec in _POD_SPECS for kind in _CONTAINER_LISTS]
    ),
}


def accessor(path: str) -> Accessor:
    """The accessor for one field path; raises :class:`FieldError` for a path no event has."""
    if path in SIGMAHQ_ALIASES:
        return SIGMAHQ_ALIASES[path]
    if path in _TOP_LEVEL:
        return _TOP_LEVEL[path]
    head, _, rest = path.partition(".")
    if head in ("requestObject", "responseObject"):
        return _in_body(head, tuple(rest.split("."))) if rest else _in_body(head, ())
    if head == "annotations" and rest:
        return _keyed("annotations", rest)
    if head == "objectRef" and rest in _OBJECT_REF:
        return _scalar(lambda e, m=rest: getattr(e.objectRef, m) if e.objectRef is not None else None)
    if head == "responseStatus" and rest in _STATUS:
        if rest == "code":
            return _code
        return _scalar(lambda e, m=rest: getattr(e.responseStatus, m) if e.responseStatus is not None else None)
    if head in ("user", "impersonatedUser"):
        pick = (lambda e: e.user) if head == "user" else (lambda e: e.impersonatedUser)
        if rest in _USER:
            return _user(rest, pick)
        member, _, key = rest.partition(".")
        if member == "extra" and key:
            return _keyed(f"{head}.extra", key)
    raise FieldError(f"unknown field {path!r}; rules read audit event fields: {_SUMMARY}")


#: Fields read straight from the typed event: cheap, so conditions on them are tested first.
def is_cheap(path: str) -> bool:
    head = path.partition(".")[0]
    heavy = head in ("requestObject", "responseObject", "annotations", "hostPath", "capabilities")
    return not heavy and ".extra." not in path
