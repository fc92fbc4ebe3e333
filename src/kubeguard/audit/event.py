"""The audit event as detection sees it.

Only the fields that detections, findings and baselines read are declared; msgspec skips the rest of
each event without building Python objects for it, which is what makes decoding cheaper than a
generic ``json.loads``. Request and response bodies stay as undecoded ``msgspec.Raw`` bytes until a
detector that cares about them asks (see :mod:`kubeguard.audit.objects`).
"""

from __future__ import annotations

import msgspec

#: Subresources whose ``ResponseStarted`` stage is the moment the action happened.
CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})


_extra_decoder = msgspec.json.Decoder(dict[str, list[str]])
_annotations_decoder = msgspec.json.Decoder(dict[str, str])


def _decode_raw_map(raw: msgspec.Raw, decoder: msgspec.json.Decoder) -> dict:
    data = bytes(raw)
    if not data or data == b"null":
        return {}
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}


class UserInfo(msgspec.Struct, omit_defaults=True, gc=False):
    username: str = ""
    uid: str = ""
    groups: list[str] = []
    #: Raw until read: only findings need it (EKS ``sessionName``, ``arn``), so most events never pay.
    extra: msgspec.Raw = msgspec.Raw(b"")

    @property
    def extras(self) -> dict[str, list[str]]:
        """``extra`` decoded; empty when absent or malformed."""
        return _decode_raw_map(self.extra, _extra_decoder)


class ObjectReference(msgspec.Struct, omit_defaults=True, gc=False):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    apiGroup: str = ""
    apiVersion: str = ""
    resourceVersion: str = ""
    subresource: str = ""


class ResponseStatus(msgspec.Struct, omit_defaults=True, gc=False):
    # ``code`` first: most statuses are {"metadata": {}, "code": 200}; the rest in the API server's order.
    code: int = 0
    status: str = ""
    message: str = ""
    reason: str = ""


class AuditEvent(msgspec.Struct, omit_defaults=True, gc=False):
    """One ``audit.k8s.io`` Event (v1 or v1beta1), plus the cluster it came from.

    The fields are declared in the order the API server writes them: msgspec looks a key up from the field
    after the last one it matched, so a key out of order costs a walk around the fields (callgrind, 40k
    lab events: level, verb and annotations out of order cost 1.7% of mapping them)."""

    #: The audit level the policy chose (Metadata, Request, RequestResponse); Sigma rules may test it.
    level: str = ""
    auditID: str = ""
    stage: str = ""
    requestURI: str = ""
    verb: str = ""
    user: UserInfo = msgspec.field(default_factory=UserInfo)
    impersonatedUser: UserInfo | None = None
    sourceIPs: list[str] = []
    userAgent: str = ""
    objectRef: ObjectReference | None = None
    responseStatus: ResponseStatus | None = None
    # Raw bytes (``msgspec.Raw``); empty when the audit level left the body out.
    requestObject: msgspec.Raw = msgspec.Raw(b"")
    responseObject: msgspec.Raw = msgspec.Raw(b"")
    requestReceivedTimestamp: str = ""
    stageTimestamp: str = ""
    #: Raw until read, like ``user.extra``: see :meth:`annotation`.
    annotations: msgspec.Raw = msgspec.Raw(b"")
    # v1beta1 events carry a top-level ``timestamp`` instead of requestReceivedTimestamp.
    timestamp: str = ""
    cluster: str = ""

    # -- convenience accessors used by every detector; kept as plain properties so they cost nothing
    # -- for events no detector looks at.

    @property
    def resource(self) -> str:
        return self.objectRef.resource if self.objectRef is not None else ""

    @property
    def subresource(self) -> str:
        return self.objectRef.subresource if self.objectRef is not None else ""

    @property
    def namespace(self) -> str:
        return self.objectRef.namespace if self.objectRef is not None else ""

    @property
    def name(self) -> str:
        return self.objectRef.name if self.objectRef is not None else ""

    @property
    def status_code(self) -> int:
        return self.responseStatus.code if self.responseStatus is not None else 0

    @property
    def succeeded(self) -> bool:
        """True when the API server carried the request out (2xx, or 101 for upgraded connections)."""
        code = self.status_code
        return 200 <= code < 300 or code == 101

    @property
    def authorized(self) -> bool:
        """True when authentication and authorization let the request through, whatever happened next.

        An exec that fails with 400 because the pod has no node was still allowed: the caller had the
        permission and used it, which is what an exec detection is about.
        """
        decision = self.annotation("authorization.k8s.io/decision")
        if decision is not None:
            return decision == "allow"
        code = self.status_code
        return code not in (401, 403) and code != 0

    def annotation(self, name: str) -> str | None:
        """One audit annotation (``authorization.k8s.io/decision``, ...), or None."""
        return _decode_raw_map(self.annotations, _annotations_decoder).get(name)

    @property
    def event_time(self) -> str:
        return self.stageTimestamp or self.requestReceivedTimestamp or self.timestamp

    @property
    def caller_ip(self) -> str:
        return self.sourceIPs[0] if self.sourceIPs else ""


class EventList(msgspec.Struct):
    """``audit.k8s.io`` EventList, as the webhook backend POSTs it (items carry no kind)."""

    items: list[AuditEvent] = []
