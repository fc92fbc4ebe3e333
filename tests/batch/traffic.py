"""Shared inputs of the batch tests: simulated clusters with attacks, and the offline scan they must equal."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import msgspec
import orjson

from kubeguard.audit.event import AuditEvent
from kubeguard.config import AnomalySettings, Settings
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline
from kubeguard.sim.simulator import SimConfig, Simulator

#: A short learning period, so a short simulation reaches the anomaly detectors' judgements.
LEARNING_HOURS = 6
SETTINGS = Settings(anomaly=AnomalySettings(learning_days=LEARNING_HOURS / 24, min_principal_events=20))
#: The same settings as ``kubeguard serve --config`` reads them (no intel feeds: the scan uses none).
SETTINGS_TOML = f"""
[anomaly]
learning_days = {LEARNING_HOURS / 24}
min_principal_events = 20

[intel]
use_default_feeds = false
"""
_decoder = msgspec.json.Decoder(AuditEvent)


@functools.cache
def simulated(seed: int = 11, days: float = 0.6) -> tuple[tuple[str, bytes], ...]:
    """``(cluster, event JSON)`` for two clusters under every attack, in time order (cached per process).

    About 23,000 events: six hours of learning, then attacks; ~36 findings, several with counts above 1.
    """
    simulator = Simulator(
        SimConfig(seed=seed, duration=timedelta(days=days), learning=timedelta(hours=LEARNING_HOURS),
                  clusters=["prod-use1", "staging-usw2"], attacks=["all"], scale=0.05)
    )
    return tuple((cluster, orjson.dumps(event)) for cluster, event in simulator.stream())


def decode(cluster: str, raw: bytes) -> AuditEvent:
    event = _decoder.decode(raw)
    event.cluster = cluster
    return event


def offline_scan(pairs: Any, settings: Settings = SETTINGS) -> dict[str, dict[str, Any]]:
    """What ``kubeguard scan`` reports for the events: findings by id (no intel, address-only IPs)."""
    pipeline = Pipeline(settings, MemoryState())
    found = FindingSet()
    for cluster, raw in pairs:
        for finding in pipeline.process_event(decode(cluster, raw)):
            found.add(finding)
    return found.by_id


def comparable(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding without what legitimately differs between runs (wall-clock stamps, the detector id)."""
    service = dict(finding["service"])
    service.pop("detectorId", None)
    service.pop("archived", None)
    return {
        "type": finding["type"],
        "severity": finding["severity"],
        "count": service["count"],
        "first": service["eventFirstSeen"],
        "last": service["eventLastSeen"],
        "resource": finding["resource"],
        "title": finding["title"],
    }
