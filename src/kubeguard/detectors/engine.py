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
from kubeguard.detectors.base import ANY, Detection, DetectionContext, Detector, resource_key
from kubeguard.detectors.effect import APPLIED_ONLY, Outcome, outcome

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, detectors: Sequence[Detector], context: DetectionContext) -> None:
        self.detectors = list(detectors)
        self.context = context
        self._routes: dict[tuple[str, str, str, Outcome], tuple[Detector, ...]] = {}
        #: The same routes as (detector, its bound ``detect``) pairs: what :meth:`detect` iterates.
        self._calls: dict[tuple[str, str, str, Outcome], tuple[tuple[Detector, Any], ...]] = {}
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
        calls = self._calls.get(key)
        if calls is None:
            calls = self._calls[key] = tuple((d, d.detect) for d in self.route(*key))
        detections: list[Detection] = []
        context = self.context
        for detector, detect in calls:
            try:
                found = detect(event, context)
                if found:
                    detections.extend(found)
            except Exception:  # noqa: BLE001 - a broken detector is reported, not fatal
                self.errors[detector.name] += 1
                log.exception("detector %s failed on audit event %s", detector.name, event.auditID)
        return detections

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
