"""``kubeguard serve --bus`` and ``kubeguard worker`` as real subprocesses, and the traffic the tests send."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
from api.server import ChildProcess, Server

from kubeguard.sim.simulator import SimConfig, Simulator

#: A short learning period so one simulated day holds history, attacks and AnomalousBehavior findings.
CONFIG = """
[anomaly]
learning_days = 0.75

[intel]
use_default_feeds = false
"""


class WorkerProcess(ChildProcess):
    def __init__(self, db_url: str, bus_url: str, workdir: Path, name: str, *extra: str) -> None:
        self.args = [
            sys.executable,
            "-m",
            "kubeguard.cli",
            "worker",
            "--bus",
            bus_url,
            "--db",
            db_url,
            "--config",
            str(workdir / "kubeguard.toml"),
            *extra,
        ]
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")



def bus_server(db_url: str, bus_url: str, workdir: Path, intel_lists_in: Path | None = None) -> Server:
    """``serve --bus``; workers started with the same ``workdir`` read the same configuration."""
    config = CONFIG
    if intel_lists_in is not None:
        config = config.replace("[intel]\n", f'[intel]\nallowed_locations = ["{intel_lists_in}"]\n')
    return Server(db_url, workdir, config, extra_args=["--bus", bus_url])


def simulated_clusters(workdir: Path, seed: int = 5) -> dict[str, Path]:
    """Two clusters, a day each (history, then every attack scenario), one JSONL file per cluster."""
    simulator = Simulator(
        SimConfig(
            seed=seed,
            duration=timedelta(days=1),
            learning=timedelta(hours=20),
            clusters=["prod-use1", "staging-usw2"],
            attacks=["all"],
            scale=0.01,
        )
    )
    lines: dict[str, list[bytes]] = {}
    for cluster, event in simulator.stream():
        lines.setdefault(cluster, []).append(orjson.dumps(event))
    paths = {}
    for cluster, records in lines.items():
        paths[cluster] = workdir / f"{cluster}.jsonl"
        paths[cluster].write_bytes(b"\n".join(records) + b"\n")
    return paths


def event_lists(path: Path, size: int) -> list[bytes]:
    """The file's events as webhook EventList bodies of ``size`` events, in order."""
    records = path.read_bytes().splitlines()
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
    return [head + b",".join(records[i : i + size]) + b"]}" for i in range(0, len(records), size)]


def wait_bus_drained(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/api/spool", timeout=10).json()
        if status["batches_pending"] == 0 and status["batches_retrying"] == 0:
            return status
        time.sleep(0.2)
    raise AssertionError(f"bus not drained: {status}")


def stored_counts(url: str, cluster: str) -> dict[str, int]:
    found = httpx.get(f"{url}/api/findings", params={"cluster": cluster, "limit": 1000}, timeout=30).json()
    return {f["id"]: f["service"]["count"] for f in found["findings"]}
