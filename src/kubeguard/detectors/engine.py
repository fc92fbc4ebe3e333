"""The detector engine: dispatch each event to the detectors that can fire on it.

Each detector declares the (verb, resource) pairs it wants. The engine resolves, once per distinct
(verb, resource/subresource) pair seen, the ordered list of detectors interested in it, and caches that
list; an event then costs one dict lookup plus the detectors that really care. A detector that raises
is logged and counted, and the event goes on to the others: one bad rule must not blind the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import ANY, Detection, DetectionContext, Detector, resource_key

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, detectors: Sequence[Detector], context: DetectionContext) -> None:
        self.detectors = list(detectors)
        self.context = context
        self._routes: dict[tuple[str, str], tuple[Detector, ...]] = {}
        self.errors: Counter[str] = Counter()

    def route(self, verb: str, resource: str) -> tuple[Detector, ...]:
        """The detectors that want ``verb`` on ``resource`` (``pods`` or ``pods/exec``), in order."""
        key = (verb, resource)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = tuple(d for d in self.detectors if _wants(d, verb, resource))
        return found

    def detect(self, event: AuditEvent) -> list[Detection]:
        ref = event.objectRef
        resource = resource_key(ref.resource, ref.subresource) if ref is not None else ""
        detections: list[Detection] = []
        for detector in self.route(event.verb, resource):
            try:
                detections.extend(detector.detect(event, self.context))
            except Exception:  # noqa: BLE001 - a broken detector is reported, not fatal
                self.errors[detector.name] += 1
                log.exception("detector %s failed on audit event %s", detector.name, event.auditID)
        return detections

    @property
    def finding_types(self) -> list[str]:
        return [t for d in self.detectors for t in d.finding_types]


def _wants(detector: Detector, verb: str, resource: str) -> bool:
    return any(
        want_verb in (ANY, verb) and want_resource in (ANY, resource)
        for want_verb, want_resource in detector.wants
    )
