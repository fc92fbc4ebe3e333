"""The detector engine: dispatch each event to the detectors that can fire on it.

Each detector declares the (verb, resource) pairs it wants. The engine resolves, once per distinct
(verb, resource/subresource) pair seen, the ordered list of detectors interested in it, and caches that
list; an event then costs one dict lookup plus the detectors that really care. Detectors may return a
generator or a list; the few that see every event return an empty tuple at once when they do not apply,
which is cheaper than starting a generator.

Before any detector runs, the engine decides once what the request did (:mod:`kubeguard.detectors.effect`:
applied, dry run, or failed) and routes it only to the detectors whose ``outcomes`` include that: a dry
run or a failed request never reaches a detector that reports changes. A detector that raises
is logged and counted, and the event goes on to the others: one bad rule must not blind the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import (
    ANONYMOUS_CALLER,
    ANONYMOUS_USER,
    ANY,
    CALLER_GATES,
    IMPERSONATING_CALLER,
    UNAUTHENTICATED_GROUP,
    WITH_INTEL,
    Detection,
    DetectionContext,
    Detector,
    resource_key,
)
from kubeguard.detectors.effect import APPLIED_ONLY, Outcome, outcome

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, detectors: Sequence[Detector], context: DetectionContext) -> None:
        self.detectors = list(detectors)
        self.context = context
        self._routes: dict[tuple[str, str, str, Outcome], tuple[Detector, ...]] = {}
        #: The same routes as :meth:`detect` runs them (see :meth:`_plan`): detectors behind a caller gate
        #: (``only_for``) are called only when their gate is open.
        self._calls: dict[tuple[str, str, str, Outcome], tuple[Any, ...]] = {}
        self.errors: Counter[str] = Counter()

    def route(
        self, verb: str, resource: str, subresource: str = "", result: Outcome = Outcome.APPLIED
    ) -> tuple[Detector, ...]:
        """The detectors that want ``verb`` on ``resource``[/``subresource``] with this outcome, in order."""
        key = (verb, resource, subresource, result)
        found = self._routes.get(key)
        if found is None:
            name = resource_key(resource, subresource)
            found = self._routes[key] = tuple(
                d for d in self.detectors if result in sees(d) and _wants(d, verb, name)
            )
        return found

    def detect(self, event: AuditEvent) -> list[Detection]:
        ref = event.objectRef
        result = outcome(event)
        key = (
            (event.verb, ref.resource, ref.subresource, result) if ref is not None else (event.verb, "", "", result)
        )
        plan = self._calls.get(key)
        if plan is None:
            plan = self._calls[key] = self._plan(key)
        without_intel, with_intel, caller_gated, every = plan
        context = self.context
        intel = context.intel is not None
        calls: Any = with_intel if intel else without_intel
        if caller_gated:
            # The caller gates (see ``gate_open``), inlined: tested once an event, and while both are closed
            # (almost always) the detectors behind them are not called at all.
            user = event.user
            anonymous = user.username == ANONYMOUS_USER or UNAUTHENTICATED_GROUP in user.groups
            impersonating = event.impersonatedUser is not None
            if anonymous or impersonating:
                opened = {ANONYMOUS_CALLER: anonymous, IMPERSONATING_CALLER: impersonating, WITH_INTEL: intel}
                calls = [(d, detect) for d, detect, gate in every if opened.get(gate, True)]
        detections: list[Detection] = []
        for detector, detect in calls:
            try:
                found = detect(event, context)
                if found:
                    detections.extend(found)
            except Exception:  # noqa: BLE001 - a broken detector is reported, not fatal
                self.errors[detector.name] += 1
                log.exception("detector %s failed on audit event %s", detector.name, event.auditID)
        return detections

    def _plan(self, key: tuple[str, str, str, Outcome]) -> tuple[Any, ...]:
        """A route as :meth:`detect` runs it: (detector, ``detect``) pairs in route order without the gated
        detectors, then the same with those behind ``WITH_INTEL``; whether any is behind a caller gate;
        and (detector, ``detect``, gate) triples of the whole route."""
        every = tuple((d, d.detect, getattr(d, "only_for", None)) for d in self.route(*key))
        without_intel = tuple((d, detect) for d, detect, gate in every if gate not in CALLER_GATES)
        with_intel = tuple(
            (d, detect) for d, detect, gate in every if gate not in CALLER_GATES or gate == WITH_INTEL
        )
        caller_gated = any(gate in (ANONYMOUS_CALLER, IMPERSONATING_CALLER) for _, _, gate in every)
        return without_intel, with_intel, caller_gated, every

    @property
    def finding_types(self) -> list[str]:
        return [t for d in self.detectors for t in d.finding_types]


def sees(detector: Detector) -> frozenset[Outcome]:
    """The outcomes a detector is shown; applied requests only unless it declares more."""
    return getattr(detector, "outcomes", APPLIED_ONLY)


def _wants(detector: Detector, verb: str, resource: str) -> bool:
    return any(
        want_verb in (ANY, verb) and want_resource in (ANY, resource)
        for want_verb, want_resource in detector.wants
    )
