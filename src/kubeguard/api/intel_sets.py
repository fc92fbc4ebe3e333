"""Activating a ThreatIntelSet or IPSet loads its list and hands detection a new intel index.

Lists are loaded when activated (so a bad location is reported to the caller at once) and kept by set id;
every change rebuilds an immutable :class:`~kubeguard.intel.index.IntelIndex` and passes it to the
``on_change`` callback, which swaps it into the running pipeline. Detection never sees a half-built index.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from kubeguard.intel.formats import ListError
from kubeguard.intel.index import IntelIndex, ThreatList
from kubeguard.intel.locations import LocationPolicy, LocationRefused
from kubeguard.intel.sources import ListSpec, SourceError, load_list
from kubeguard.store.ipsets import THREAT, IpSetRecord

log = logging.getLogger(__name__)

IntelChange = Callable[[IntelIndex], None]


class IntelLoadError(Exception):
    """The list at a set's location could not be read or parsed."""


class IntelSets:
    def __init__(self, on_change: IntelChange | None = None, policy: LocationPolicy | None = None) -> None:
        self._on_change = on_change or (lambda _index: None)
        self._policy = policy or LocationPolicy.from_settings([])
        self._loaded: dict[str, ThreatList] = {}
        self._lock = threading.Lock()

    def load_active(self, records: Iterable[IpSetRecord]) -> None:
        """At startup: load every active set; one that fails is logged and left out."""
        for record in records:
            try:
                self._loaded[record.id] = _load(record, self._policy)
            except IntelLoadError as exc:
                log.error("intel set %s (%s) not loaded: %s", record.name, record.location, exc)
        self._publish()

    def activate(self, record: IpSetRecord) -> None:
        threat_list = _load(record, self._policy)
        with self._lock:
            self._loaded[record.id] = threat_list
            self._publish()

    def deactivate(self, set_id: str) -> None:
        with self._lock:
            if self._loaded.pop(set_id, None) is not None:
                self._publish()

    def index(self) -> IntelIndex:
        lists = list(self._loaded.values())
        return IntelIndex(
            [item for item in lists if item.kind == "custom"], [item for item in lists if item.kind == "trusted"]
        )

    def _publish(self) -> None:
        self._on_change(self.index())


def _load(record: IpSetRecord, policy: LocationPolicy) -> ThreatList:
    spec = ListSpec(record.location, record.format.upper(), record.name)
    try:
        policy.check(record.location)
    except LocationRefused as exc:
        raise IntelLoadError(str(exc)) from exc
    try:
        loaded = load_list(spec)
    except (SourceError, ListError, OSError, ValueError) as exc:
        raise IntelLoadError(str(exc)) from exc
    return ThreatList.from_loaded(loaded, "custom" if record.kind == THREAT else "trusted")
