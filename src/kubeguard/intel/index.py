"""The threat-intelligence view detection uses: which lists hold an address, and is it trusted.

Three kinds of threat list map to three GuardDuty finding families:

* ``custom``: the operator's lists (``--threat-list``, ThreatIntelSets) -> ``MaliciousIPCaller.Custom``
* ``malicious``: the open feeds from ``kubeguard intel update`` -> ``MaliciousIPCaller``
* ``tor``: Tor exit nodes -> ``TorIPCaller``

Trusted lists are kept apart and :meth:`IntelIndex.match` does not apply them: the caller detector decides
that a trusted address raises nothing (GuardDuty: "the trusted list wins"), and ``intel check`` can still
show both sides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubeguard.intel.formats import MAX_FILE_BYTES
from kubeguard.intel.ipset import IPSet, parse_ip
from kubeguard.intel.sources import DEFAULT_TIMEOUT, ListSpec, LoadedList, load_list, parse_list_spec

__all__ = ["KINDS", "IntelIndex", "IntelMatch", "ThreatList"]

log = logging.getLogger(__name__)

KINDS = ("custom", "malicious", "tor")


@dataclass(frozen=True, slots=True)
class IntelMatch:
    """One list holding one address; the fields a finding's ``threatIntelligenceDetails`` needs."""

    kind: str
    list_name: str
    threat_names: tuple[str, ...]
    ip: str
    file_sha256: str


@dataclass(frozen=True, slots=True)
class ThreatList:
    """A named, loaded list of one kind (trusted lists use kind ``trusted``)."""

    name: str
    kind: str
    ipset: IPSet
    threat_names: tuple[str, ...] = ()
    file_sha256: str = ""
    location: str = ""

    @classmethod
    def from_loaded(cls, loaded: LoadedList, kind: str, threat_names: Sequence[str] = ()) -> ThreatList:
        return cls(loaded.name, kind, loaded.parsed.ipset, tuple(threat_names), loaded.sha256, loaded.location)


class IntelIndex:
    """Immutable lookup over threat lists and trusted lists; safe to share between threads."""

    def __init__(self, lists: Iterable[ThreatList] = (), trusted: Iterable[ThreatList] = ()) -> None:
        self._lists = tuple(lists)
        self._trusted = tuple(trusted)
        seen: set[str] = set()
        for threat_list in self._lists:
            if threat_list.kind not in KINDS:
                raise ValueError(f"list {threat_list.name}: kind must be one of {', '.join(KINDS)}")
            if threat_list.name in seen:
                raise ValueError(f"two threat lists are named {threat_list.name!r}; findings could not tell them apart")
            seen.add(threat_list.name)

    @property
    def lists(self) -> tuple[ThreatList, ...]:
        return self._lists

    @property
    def trusted(self) -> tuple[ThreatList, ...]:
        return self._trusted

    def is_trusted(self, ip: str) -> bool:
        """True if any trusted list holds ``ip``."""
        key = parse_ip(ip)
        return key is not None and any(trusted.ipset.contains_key(key) for trusted in self._trusted)

    def trusted_by(self, ip: str) -> list[str]:
        """Names of the trusted lists holding ``ip`` (for ``intel check`` and explanations)."""
        key = parse_ip(ip)
        if key is None:
            return []
        return [trusted.name for trusted in self._trusted if trusted.ipset.contains_key(key)]

    def match(self, ip: str) -> list[IntelMatch]:
        """Every threat list holding ``ip``, custom lists first; trusted lists are NOT applied here."""
        key = parse_ip(ip)
        if key is None:
            return []
        return [
            IntelMatch(threat_list.kind, threat_list.name, threat_list.threat_names, ip, threat_list.file_sha256)
            for threat_list in self._lists
            if threat_list.ipset.contains_key(key)
        ]

    def __repr__(self) -> str:
        names = ", ".join(f"{item.kind}:{item.name}" for item in self._lists)
        return f"IntelIndex(lists=[{names}], trusted={len(self._trusted)})"

    @classmethod
    def from_settings(
        cls,
        threat_lists: Sequence[str | ListSpec] = (),
        trusted_lists: Sequence[str | ListSpec] = (),
        tor_exits: Sequence[str | Path] = (),
        use_default_feeds: bool = True,
        cache_dir: str | Path | None = None,
        malicious_lists: Sequence[str | ListSpec] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> IntelIndex:
        """Build the index a scan or the service runs with.

        Lists the operator names explicitly must load: a failure raises (``SourceError`` or ``ListError``),
        because scanning without a trusted list invents findings and without a threat list misses them.
        The default feeds come from the local cache only (never the network) and are best effort: a missing
        or broken cached feed is logged and left out, and an explicit list of the same name replaces it.
        """
        custom = [ThreatList.from_loaded(_load(spec, timeout, max_bytes), "custom") for spec in threat_lists]
        trusted = [ThreatList.from_loaded(_load(spec, timeout, max_bytes), "trusted") for spec in trusted_lists]
        tor = [
            ThreatList.from_loaded(_load(str(spec), timeout, max_bytes), "tor", ("Tor exit node",))
            for spec in tor_exits
        ]
        known_bad = [
            ThreatList.from_loaded(_load(spec, timeout, max_bytes), "malicious", ("Known malicious IP",))
            for spec in malicious_lists
        ]
        feeds: list[ThreatList] = []
        if use_default_feeds:
            explicit = {item.name for item in [*custom, *known_bad, *tor]}
            feeds = [item for item in _cached_feeds(cache_dir, max_bytes) if item.name not in explicit]
        malicious = known_bad + [item for item in feeds if item.kind == "malicious"]
        tor += [item for item in feeds if item.kind == "tor"]
        return cls([*custom, *malicious, *tor], trusted)


def _load(spec: str | ListSpec, timeout: float, max_bytes: int) -> LoadedList:
    loaded = load_list(parse_list_spec(spec) if isinstance(spec, str) else spec, timeout=timeout, max_bytes=max_bytes)
    log.info(
        "loaded list %s from %s: %d entries, %d problems",
        loaded.name,
        loaded.location,
        len(loaded.parsed.ipset),
        loaded.parsed.problem_count,
    )
    return loaded


def _cached_feeds(cache_dir: str | Path | None, max_bytes: int) -> list[ThreatList]:
    from kubeguard.intel.feeds import FeedCache, default_cache_dir

    cache = FeedCache(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    loaded = cache.load(max_bytes=max_bytes)
    if not loaded:
        log.warning("no threat feeds cached in %s; run `kubeguard intel update`", cache.root)
    return [ThreatList.from_loaded(item, state.kind, state.threat_names) for state, item in loaded]
