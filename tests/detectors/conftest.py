"""Detector-test helpers: real events from the lab log, and a run of chosen detectors to wire findings."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from kubeguard.config import Settings
from kubeguard.detectors.base import Detector
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import FindingSet, Pipeline

Record = dict[str, Any]


@pytest.fixture(scope="session")
def lab_records(lab_dir: Path) -> list[Record]:
    with gzip.open(lab_dir / "audit.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def lab_record(lab_records: list[Record]) -> Callable[..., Record]:
    """A deep copy of the one ResponseComplete lab event with this verb, resource and name (and user)."""

    def find(verb: str, resource: str, name: str, *, user: str | None = None, code: int | None = None,
             subresource: str = "") -> Record:
        found = [
            r for r in lab_records
            if r["stage"] == "ResponseComplete" and r["verb"] == verb
            and r.get("objectRef", {}).get("resource") == resource
            and r.get("objectRef", {}).get("subresource", "") == subresource
            and r.get("objectRef", {}).get("name") == name
            and (user is None or r["user"]["username"] == user)
            and (code is None or r["responseStatus"]["code"] == code)
        ]
        assert found, f"no lab event {verb} {resource}/{subresource} {name}"
        return copy.deepcopy(found[0])

    return find


@pytest.fixture
def run(make_event: Callable[..., Any]) -> Callable[..., list[Record]]:
    """Aggregated wire findings the given detectors raise over ``records`` (in order)."""

    def run_detectors(
        detectors: Sequence[Detector], records: Iterable[Record], *, state: MemoryState | None = None,
        cluster: str = "test-cluster",
    ) -> list[Record]:
        pipeline = Pipeline(Settings(), state if state is not None else MemoryState(), detectors=detectors)
        findings = FindingSet()
        for record in records:
            for finding in pipeline.process_event(make_event(record, cluster)):
                findings.add(finding)
        return findings.values()

    return run_detectors
