"""moto's CloudWatch Logs in server mode on a free port, behind a proxy that throttles and pages emptily."""

from __future__ import annotations

import gzip
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from store.databases import DIALECTS, database_url

from kubeguard.store.database import open_engine
from sources.cloudwatch_proxy import CloudWatchProxy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LAB_LOG = EXAMPLES / "lab-audit.jsonl.gz"
REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] is in the test extra
        if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"moto[server] is required: {exc}")
        pytest.skip(f"moto[server] not installed: {exc}")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def proxy(moto_url) -> Iterator[CloudWatchProxy]:
    proxy = CloudWatchProxy(moto_url).start()
    yield proxy
    proxy.close()


@pytest.fixture
def aws_env(proxy, monkeypatch) -> dict[str, str]:
    """Only the standard AWS_* variables, pointing the SDK at the proxy (as a user points it at AWS)."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": proxy.url,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


@pytest.fixture
def logs(moto_url):
    """A client straight to moto, for laying events the way EKS does."""
    return boto3.client(
        "logs", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


class LogGroup:
    """An EKS-shaped log group: audit streams and a plain API-server stream."""

    def __init__(self, logs, name: str) -> None:
        self.logs = logs
        self.name = name
        logs.create_log_group(logGroupName=name)
        self.streams: set[str] = set()

    def put(self, stream: str, messages: list[str], timestamps: list[int]) -> None:
        if stream not in self.streams:
            self.logs.create_log_stream(logGroupName=self.name, logStreamName=stream)
            self.streams.add(stream)
        events = sorted(zip(timestamps, messages, strict=True))
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            self.logs.put_log_events(
                logGroupName=self.name,
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": message} for ts, message in chunk],
            )


@pytest.fixture
def log_group(logs, request) -> LogGroup:
    safe = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60]
    return LogGroup(logs, f"/aws/eks/{safe}-{time.time_ns() % 10**9}/cluster")


@pytest.fixture(scope="session")
def lab_lines() -> list[str]:
    with gzip.open(LAB_LOG, "rt") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


@pytest.fixture(params=DIALECTS)
def store_engine(request, tmp_path):
    """A fresh store on each dialect: a source's cursor must commit with its batch on both."""
    with database_url(request.param, tmp_path) as url:
        engine = open_engine(url)
        yield engine
        engine.dispose()
