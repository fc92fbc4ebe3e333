"""Nothing happened, nothing to report: what an audited request did to the cluster, decided in one place.

A finding that says something was created, launched, bound, exposed or executed needs that to have
happened. This module is the only place that decides it, and the engine applies it to every detector
before the detector runs (see :class:`kubeguard.detectors.engine.Engine`):

* **Dry runs** (``dryRun=All`` in the query: ``kubectl apply --dry-run=server``, ``kubectl diff``) are
  validated and admitted, then thrown away. They change nothing: no finding and no detector state, so a
  dry run cannot make the later real launch of the same image "seen before".
* **Failed requests** (any 4xx or 5xx: denied, not found, conflict, invalid, admission refused) change
  nothing. A request whose response status was not logged is not known to have done anything either.
* **exec, attach and port-forward** do something only once the API server upgraded the connection to a
  stream (``101 Switching Protocols``), at whichever stage it logged that. An exec answered 400 (the pod
  has no node) or 404 (no such pod or container) ran nothing.

What a write changed matters too: a ``patch`` that did not touch the part of an object a detector is
about (a label on a privileged DaemonSet, an annotation on an exposed Service, :func:`patch_touches`)
launches and exposes nothing new, and updates the cluster's own controllers make to workloads copy
templates someone else wrote (:func:`is_controller`).

Detectors that judge *who is calling* rather than *what changed* (the threat-intelligence IP callers,
the anomaly learner that profiles callers) declare the outcomes they also want to see in ``outcomes``;
everything else sees applied requests only. Exemptions for Kubernetes' own bootstrap objects are decided
by who made the change, with :func:`is_bootstrap_change`, never by an object's name.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import parse_qs, urlsplit

import msgspec

from kubeguard.audit.event import CONNECT_SUBRESOURCES, AuditEvent

SWITCHING_PROTOCOLS = 101

#: The API server reconciles its bootstrap RBAC policy (``system:public-info-viewer`` bound to
#: ``system:unauthenticated``, ``system:discovery``, ...) under this identity at every start.
BOOTSTRAP_USERS = frozenset({"system:apiserver"})


class Outcome(StrEnum):
    """What a request did: the three answers a detector can ask to see."""

    APPLIED = "applied"
    DRY_RUN = "dry-run"
    FAILED = "failed"


#: The default for every detector: it sees only requests that changed or read something.
APPLIED_ONLY = frozenset({Outcome.APPLIED})
#: Detectors about the caller (IP lists): every request counts, whatever it did.
EVERY_OUTCOME = frozenset(Outcome)


def is_dry_run(event: AuditEvent) -> bool:
    """``dryRun=All`` in the request's query string.

    The API server reads the parameter by its exact name and accepts only ``All``; ``dryrun=All`` or
    ``dryRun=all`` is ignored (or refused) by it, so it does not make a request harmless here either.
    """
    uri = event.requestURI
    if "dryRun=" not in uri:
        return False
    return "All" in parse_qs(urlsplit(uri).query).get("dryRun", ())


def is_established(event: AuditEvent) -> bool:
    """A streaming call (exec, attach, port-forward) whose connection was upgraded."""
    return event.status_code == SWITCHING_PROTOCOLS


def is_streaming(event: AuditEvent) -> bool:
    ref = event.objectRef
    return ref is not None and ref.subresource in CONNECT_SUBRESOURCES


def outcome(event: AuditEvent) -> Outcome:
    """The one rule: did this request change (or, for a read, return) anything?

    Runs for every counted event, so it reads each field once rather than through the properties.
    """
    status = event.responseStatus
    code = status.code if status is not None else 0
    ref = event.objectRef
    if ref is not None and ref.subresource in CONNECT_SUBRESOURCES:  # streaming: exec, attach, port-forward
        return Outcome.APPLIED if code == SWITCHING_PROTOCOLS else Outcome.FAILED
    if not (200 <= code < 300 or code == SWITCHING_PROTOCOLS):  # 101: a proxied stream (nodes/proxy)
        return Outcome.FAILED
    if "dryRun=" in event.requestURI and is_dry_run(event):
        return Outcome.DRY_RUN
    return Outcome.APPLIED


def took_effect(event: AuditEvent) -> bool:
    return outcome(event) is Outcome.APPLIED


def is_bootstrap_change(event: AuditEvent) -> bool:
    """Made by the API server's own bootstrap identity, in its own name (nobody impersonating it)."""
    return event.user.username in BOOTSTRAP_USERS and event.impersonatedUser is None


#: The kube-controller-manager, under its own name or (``--use-service-account-credentials``) one
#: kube-system service account per controller: ``deployment-controller``, ``replicaset-controller``, ...
CONTROLLER_USERS = frozenset({"system:kube-controller-manager"})
CONTROLLER_ACCOUNT_PREFIX = "system:serviceaccount:kube-system:"
_OTHER_CONTROLLER_ACCOUNTS = frozenset({"generic-garbage-collector", "horizontal-pod-autoscaler"})


def is_controller(event: AuditEvent) -> bool:
    """The cluster's own controllers: their updates copy templates someone else wrote (a Deployment's
    revision annotation, a ReplicaSet's replica count), so what those templates launch was judged then.
    Other kube-system service accounts are not trusted by name: a stolen token is a classic attack.
    """
    user = event.user.username
    if user in CONTROLLER_USERS or event.impersonatedUser is not None:
        return user in CONTROLLER_USERS and event.impersonatedUser is None
    if not user.startswith(CONTROLLER_ACCOUNT_PREFIX):
        return False
    account = user[len(CONTROLLER_ACCOUNT_PREFIX):]
    return account.endswith("-controller") or account in _OTHER_CONTROLLER_ACCOUNTS


def patch_touches(event: AuditEvent, *paths: tuple[str, ...]) -> bool:
    """Whether a ``patch`` request changed anything at or below one of ``paths`` (key tuples).

    A patch that relabels a privileged DaemonSet or annotates an exposed Service launches and exposes
    nothing new: the object's security-relevant part is what it was. Merge, strategic-merge and apply
    patches are objects (an apply patch carries the whole manifest, so it always touches what it
    declares); JSON patches are lists of operations with ``/``-separated paths. Any other verb, or a
    patch whose body the audit level left out, counts as touching everything: nothing is known.
    """
    if event.verb != "patch":
        return True
    raw = bytes(event.requestObject)
    if not raw or raw == b"null":
        return True
    try:
        body = _json.decode(raw)
    except msgspec.DecodeError:
        return True
    if isinstance(body, list):
        return any(_operation_touches(op, paths) for op in body)
    if isinstance(body, dict):
        return any(_object_has(body, path) for path in paths)
    return True


_json = msgspec.json.Decoder()


def _object_has(body: dict, path: tuple[str, ...]) -> bool:
    node: object = body
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _operation_touches(op: object, paths: tuple[tuple[str, ...], ...]) -> bool:
    if not isinstance(op, dict):
        return True
    keys = tuple(_unescape(part) for part in str(op.get("path", "")).split("/")[1:])
    # An operation on a parent (replace /spec) or on a child (add /spec/template/spec/volumes/-) touches.
    return any(keys[: len(path)] == path or path[: len(keys)] == keys for path in paths)


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
