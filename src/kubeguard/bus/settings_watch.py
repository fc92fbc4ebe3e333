"""Settings that change detection, read from the store by every worker before each batch.

A worker does not receive the API calls that disable a detector or activate a threat list: the ``serve``
process that got them writes them to the store. Before each batch the worker reads a small fingerprint of
those settings (the detectors' ids, statuses and update times, and the active IP sets' ids and update
times) inside the batch's own transaction; when it changed, it reloads them. So a batch processed after
the change committed is processed with it, on every worker, without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from kubeguard.api.app import intel_swapper
from kubeguard.api.intel_sets import IntelSets
from kubeguard.intel.index import IntelIndex
from kubeguard.intel.locations import LocationPolicy
from kubeguard.store import ipsets, schema

log = logging.getLogger(__name__)


class DetectionSettings:
    """The detector findings are filed under, whether it is enabled, and the intel detection reads."""

    def __init__(
        self,
        base_intel: IntelIndex | None,
        on_intel: Callable[[IntelIndex | None], None],
        policy: LocationPolicy | None = None,
    ) -> None:
        self.detector_id: str | None = None
        self.detector_enabled = True
        self.intel: IntelIndex | None = base_intel
        self._base = base_intel
        self._policy = policy
        self._on_intel = on_intel
        self._fingerprint: Any = None

    def refresh(self, conn: Connection) -> bool:
        """Reload what changed since the last call; True if anything did."""
        detectors = schema.detectors
        rows = conn.execute(
            select(detectors.c.id, detectors.c.status, detectors.c.updated_at_ms).order_by(
                detectors.c.created_at_ms, detectors.c.id
            )
        ).all()
        sets = schema.ip_sets
        active = conn.execute(
            select(sets.c.id, sets.c.updated_at_ms).where(sets.c.status == "ACTIVE").order_by(sets.c.id)
        ).all()
        fingerprint = (tuple(map(tuple, rows)), tuple(map(tuple, active)))
        if fingerprint == self._fingerprint:
            return False
        sets_changed = self._fingerprint is None or fingerprint[1] != self._fingerprint[1]
        self._fingerprint = fingerprint
        self.detector_id = str(rows[0][0]) if rows else None
        self.detector_enabled = bool(rows) and rows[0][1] == "ENABLED"
        if sets_changed:
            IntelSets(intel_swapper(self, self._base), self._policy).load_active(ipsets.active(conn))
        log.info(
            "detection settings loaded: detector %s (%s), %d active IP sets",
            self.detector_id,
            "enabled" if self.detector_enabled else "disabled",
            len(active),
        )
        return True

    def set_intel(self, intel: IntelIndex | None) -> None:
        """Called by :func:`intel_swapper` with the configured lists combined with the API's sets."""
        self.intel = intel
        self._on_intel(intel)
