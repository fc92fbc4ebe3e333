"""One simulated intrusion shared by the correlation tests: nine days of ordinary work, then erin's
credentials used from a hosting ASN with a Python client (sim scenario ``compromised-credentials``)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubeguard.config import Settings
from kubeguard.intel.geo import GeoResolver
from kubeguard.scan import run_scan
from kubeguard.sim.clock import parse_start
from kubeguard.sim.simulator import SimConfig, Simulator, cluster_names


@dataclass
class Intrusion:
    log: Path
    benign_log: Path
    label: dict[str, Any]
    findings: list[dict[str, Any]]


def _simulate(directory: Path) -> tuple[Path, Path, dict[str, Any]]:
    config = SimConfig(seed=5, start=parse_start("2026-01-05T00:00:00Z"), duration=timedelta(days=10),
                       clusters=cluster_names(1), attacks=["compromised-credentials"], scale=0.1,
                       learning=timedelta(days=9))
    simulator = Simulator(config)
    events = [event for _, event in simulator.stream()]
    (label,) = simulator.labels
    attack = set(label["auditIDs"])
    log, benign = directory / "audit.jsonl.gz", directory / "benign.jsonl.gz"
    with gzip.open(log, "wb", compresslevel=1) as out, gzip.open(benign, "wb", compresslevel=1) as quiet:
        for event in events:
            line = orjson.dumps(event) + b"\n"
            out.write(line)
            if event["auditID"] not in attack:
                quiet.write(line)
    return log, benign, label


@pytest.fixture(scope="session")
def intrusion(tmp_path_factory) -> Intrusion:
    log, benign, label = _simulate(tmp_path_factory.mktemp("intrusion"))
    result = run_scan([str(log)], Settings(), pipeline_options={"describe_ip": GeoResolver().details})
    return Intrusion(log, benign, label, result.findings)
