"""The GKE Pub/Sub source against Google's Pub/Sub emulator, started by the test on a free port.

The lab's audit events are published as the LogEntries a GKE Log Router sink sends, plus messages that
are not audit entries. A crash between committing a batch and acknowledging it is simulated by an
acknowledgement that fails: Pub/Sub then delivers those messages again, and the source must drop them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from audit.lab_envelopes import GKE_CLUSTER, gke_log_entry

from kubeguard.audit.decode import decode_bytes
from kubeguard.sources.pubsub import PubSubError, PubSubRest, PubSubSource
from kubeguard.sources.spec import parse_source
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store.database import open_engine
from kubeguard.store.spool import Spool
from sources.spooled import spooled_keys

EMULATOR_PATHS = (
    os.environ.get("KUBEGUARD_PUBSUB_EMULATOR", ""),
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    "/usr/share/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
)
PROJECT = "kg-test-project"


def _emulator_binary() -> str:
    for path in EMULATOR_PATHS:
        if path and Path(path).exists() and shutil.which("java"):
            return path
    message = "Pub/Sub emulator not installed (apt-get install google-cloud-cli-pubsub-emulator)"
    if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[str]:
    binary = _emulator_binary()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path_factory.mktemp("pubsub")
    log = (data / "emulator.log").open("wb")
    process = subprocess.Popen(
        [binary, "--host=127.0.0.1", f"--port={port}", f"--dir={data}"], stdout=log, stderr=subprocess.STDOUT
    )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://{host}/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((data / "emulator.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield host
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def subscription(emulator, monkeypatch) -> str:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    name = f"gke-audit-{time.time_ns() % 10**9}"
    topic = f"projects/{PROJECT}/topics/{name}"
    base = f"http://{emulator}/v1"
    httpx.put(f"{base}/{topic}").raise_for_status()
    subscription = f"projects/{PROJECT}/subscriptions/{name}"
    httpx.put(f"{base}/{subscription}", json={"topic": topic, "ackDeadlineSeconds": 10}).raise_for_status()
    return subscription


def _publish(emulator: str, subscription: str, payloads: list[bytes]) -> None:
    topic = subscription.replace("/subscriptions/", "/topics/")
    for start in range(0, len(payloads), 500):
        messages = [{"data": base64.b64encode(p).decode()} for p in payloads[start : start + 500]]
        httpx.post(f"http://{emulator}/v1/{topic}:publish", json={"messages": messages}).raise_for_status()


def test_pulls_gke_entries_and_drops_redeliveries_after_a_lost_ack(emulator, subscription, tmp_path, lab_lines):
    records = [json.loads(line) for line in lab_lines[:200]]
    entries = [json.dumps(gke_log_entry(record)).encode() for record in records]
    _publish(emulator, subscription, [*entries, b"plain text, not JSON", b'{"textPayload": "kubelet started"}'])
    expected = [(e.auditID, e.stage) for e in decode_bytes(b"\n".join(entries), input_format="gke").events]

    engine = open_engine(f"sqlite:///{tmp_path / 'kg.db'}")
    spec = parse_source(f"pubsub:{subscription}")
    client = PubSubRest(subscription, pull_wait=2.0)
    source = PubSubSource(spec, SpoolWriter(engine, Spool(engine)), engine, client=client)

    acknowledge = client.acknowledge
    lost: list[int] = []

    def lost_ack(ack_ids: list[str]) -> None:
        if not lost:  # the process "dies" after the commit, before Pub/Sub hears of it
            lost.append(len(ack_ids))
            # The dead subscriber's ack deadline runs out: what Pub/Sub does after ackDeadlineSeconds, now.
            httpx.post(
                f"http://{emulator}/v1/{subscription}:modifyAckDeadline",
                json={"ackIds": ack_ids, "ackDeadlineSeconds": 0},
            ).raise_for_status()
            raise PubSubError("connection reset")
        acknowledge(ack_ids)

    client.acknowledge = lost_ack
    with pytest.raises(PubSubError):
        source.pull_once()
    restarted = PubSubSource(spec, SpoolWriter(engine, Spool(engine)), engine, client=client)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(spooled_keys(engine)) < len(expected):
        restarted.pull_once()
    while restarted.pull_once():
        pass

    assert sorted(spooled_keys(engine)) == sorted(expected)
    with engine.connect() as conn:
        clusters = {row[0] for row in conn.exec_driver_sql("SELECT DISTINCT cluster FROM kg_spool")}
    assert clusters == {GKE_CLUSTER}
    health = restarted.health.snapshot()
    # Everything the first pull committed came back and was dropped (its rejects are remembered too).
    assert health["duplicatesDropped"] == lost[0]
    total_rejects = source.health.rejects["not_audit_event"] + health["rejects"].get("not_audit_event", 0)
    assert total_rejects == 2
    client.close()
    engine.dispose()


def test_a_bad_subscription_name_is_refused():
    with pytest.raises(ValueError, match="not a Pub/Sub subscription"):
        parse_source("pubsub:my-subscription")
    assert parse_source(f"pubsub:projects/{PROJECT}/subscriptions/abc,cluster=gke-1").cluster == "gke-1"
