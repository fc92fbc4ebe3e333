"""Scan hand-built records through the whole pipeline, exactly as ``kubeguard scan`` decodes and detects."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kubeguard.audit.decode import decode_bytes
from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline

Record = dict[str, Any]


def decode(records: list[Record]) -> list[AuditEvent]:
    """The events exactly as the scanner decodes them from a JSON-lines log."""
    result = decode_bytes(b"\n".join(json.dumps(r).encode() for r in records))
    assert result.rejects == [], result.rejects
    return result.events


def scan(records: list[Record], state: MemoryState | None = None, packs: Iterable[str] = ()) -> list[Record]:
    """Aggregated findings of the default detectors (plus ``packs``) over ``records``, fresh state by default."""
    pipeline = Pipeline(Settings(), state if state is not None else MemoryState(),
                        detectors=default_detectors(packs))
    findings = FindingSet()
    for event in decode(records):
        for finding in pipeline.process_event(event):
            findings.add(finding)
    return findings.values()


def types(records: list[Record], packs: Iterable[str] = ()) -> set[str]:
    return {f["type"] for f in scan(records, packs=packs)}


def with_pack(records: list[Record]) -> set[str]:
    return types(records, packs=("audit-trail",))
