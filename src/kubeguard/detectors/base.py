"""What a detector is, what it returns, and what it may read while it runs.

A detector is a small object with a name, the finding types it can raise, the (verb, resource) pairs it
wants to see, and a ``detect`` method. The engine uses ``wants`` to dispatch each event only to the
detectors that can fire on it. A detector returns :class:`Detection` objects: everything the finding
builder needs, and nothing about the wire format.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from kubeguard.audit.event import AuditEvent

#: Matches any verb or any resource in a detector's ``wants``.
ANY = "*"

SEVERITY_LOW = 2.0
SEVERITY_MEDIUM = 5.0
SEVERITY_HIGH = 8.0
SEVERITY_CRITICAL = 9.0


def resource_key(resource: str, subresource: str = "") -> str:
    """The dispatch name of a resource: ``pods`` or ``pods/exec``."""
    return f"{resource}/{subresource}" if subresource else resource


@dataclass(slots=True)
class Detection:
    """One reason to raise (or update) a finding.

    ``key`` is the type's own part of the aggregation fingerprint (source IP for caller findings,
    workload for workload findings, binding or role for RBAC findings, pod for exec); the builder adds
    cluster, type and principal.
    """

    finding_type: str
    severity: float
    event: AuditEvent
    key: str
    title: str
    description: str
    workload: dict[str, Any] | None = None
    role_binding: dict[str, Any] | None = None
    role: dict[str, Any] | None = None
    permission_check: dict[str, Any] | None = None
    anomaly: dict[str, Any] | None = None
    threat_intel: list[dict[str, Any]] | None = None
    #: The address described in ``remoteIpDetails``; the first source IP when empty.
    remote_ip: str = ""
    #: ``kubernetesApiCallAction.parameters``: the exec command, or the request fields that triggered.
    parameters: str = ""
    #: Extra keys for ``service.additionalInfo.value`` (threatListName, anomalies, ...).
    additional_info: dict[str, Any] = field(default_factory=dict)
    #: The top-level ``customDetectionRuleName``: the title of the user rule that matched (Sigma rules).
    custom_rule_name: str = ""


class StateStore(Protocol):
    """Durable memory for stateful detectors (first-seen sets, baselines).

    Implementations: :class:`kubeguard.detectors.state.MemoryState` (optionally saved to a file for
    ``scan --state``) and the SQL store used by the service.
    """

    def first_seen(self, scope: str, key: str) -> bool:
        """Remember ``key`` in ``scope``; True if it was not remembered before."""
        ...

    def seen(self, scope: str, key: str) -> bool:
        """Whether ``key`` is remembered in ``scope``, without remembering it."""
        ...

    def forget(self, scope: str, key: str) -> None:
        """Drop ``key`` from ``scope`` (a role that lost its wildcard rule, say)."""
        ...


@dataclass(slots=True)
class DetectionContext:
    """What detectors may read besides the event: shared state and optional services."""

    state: StateStore
    #: Threat intelligence (``kubeguard.intel.IntelIndex``) when configured; None disables IP callers.
    intel: Any = None
    #: Anomaly baselines (``kubeguard.detectors.anomaly``) when enabled.
    baselines: Any = None


#: ``only_for``: the caller is anonymous (``system:anonymous``, or in ``system:unauthenticated``).
ANONYMOUS_CALLER = "anonymous"
#: ``only_for``: the request impersonated someone (it has an ``impersonatedUser``).
IMPERSONATING_CALLER = "impersonating"
#: ``only_for``: threat intelligence is loaded (``ctx.intel`` is not None).
WITH_INTEL = "intel"
CALLER_GATES = frozenset({ANONYMOUS_CALLER, IMPERSONATING_CALLER, WITH_INTEL})
ANONYMOUS_USER = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"


def is_anonymous(event: AuditEvent) -> bool:
    """The caller is unauthenticated: ``system:anonymous``, or in ``system:unauthenticated``."""
    user = event.user
    return user.username == ANONYMOUS_USER or UNAUTHENTICATED_GROUP in user.groups


def gate_open(gate: str | None, event: AuditEvent, ctx: DetectionContext) -> bool:
    """Whether a detector behind ``gate`` (its ``only_for``, None for none) may find anything in ``event``.

    The reference for the inlined tests in :mod:`kubeguard.split_scan`; the tests hold every gated
    detector to it."""
    if gate is None:
        return True
    if gate == ANONYMOUS_CALLER:
        return is_anonymous(event)
    if gate == IMPERSONATING_CALLER:
        return event.impersonatedUser is not None
    if gate == WITH_INTEL:
        return ctx.intel is not None
    raise ValueError(f"unknown caller gate {gate!r}; known: {', '.join(sorted(CALLER_GATES))}")


class Detector(Protocol):
    """The contract every detector module fulfils (see ``detectors/registry.py``)."""

    name: ClassVar[str]
    finding_types: ClassVar[tuple[str, ...]]
    #: (verb, resource-key) pairs this detector can fire on; ``ANY`` is a wildcard on either side.
    wants: ClassVar[tuple[tuple[str, str], ...]]
    # A detector may also declare ``outcomes``: the request outcomes (``detectors.effect.Outcome``) it
    # is shown. Without it, it sees applied requests only: the "nothing happened" rule.
    # A detector may declare ``stateless = True`` when ``detect`` reads nothing but the event and
    # ``ctx.intel`` and writes nothing another event could see (a pure memo is fine): a split scan
    # (``kubeguard.split_scan``) then runs it beside the decoding, in any process, on any event.
    # Any detector may declare ``relevant(event) -> bool``, reading only the event: False promises that
    # ``detect`` would return nothing and change no state for it, so a split scan need not send it on.
    # A detector that raises no finding may split ``detect`` into ``prepare(event)`` (reads only the
    # event; None: nothing to record) and ``apply(fact, ctx)`` (records it), so that a split scan reads
    # the event where it is decoded and records the fact in order.
    # A stateless detector may declare ``only_for``, one of the :data:`CALLER_GATES`: a promise that
    # ``detect`` returns nothing unless the gate is open (see :func:`gate_open`). A split scan tests the
    # gate inline, once for every detector behind it, instead of calling each ``detect`` on every event
    # (the three detectors that want every event are behind gates).

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterable[Detection]: ...
