"""A poison batch is dead-lettered after N attempts without blocking its cluster; detection settings changed
through the API reach a running worker without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import msgspec
import nats
import pytest

from bus.processes import WorkerProcess, bus_server, wait_bus_drained
from kubeguard.bus import layout

LISTED_IP = "203.0.113.9"


def _event(n: int, *, user: str, verb: str, resource: str, ip: str = "10.0.0.1") -> dict:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"audit-{n}",
        "stage": "ResponseComplete",
        "verb": verb,
        "requestURI": f"/api/v1/namespaces/default/{resource}",
        "user": {"username": user, "groups": ["system:unauthenticated"] if user == "system:anonymous" else []},
        "sourceIPs": [ip],
        "userAgent": "curl/8.0",
        "objectRef": {"resource": resource, "namespace": "default", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "stageTimestamp": f"2026-01-05T10:00:{n % 60:02d}.000000Z",
    }


def _post(url: str, cluster: str, *events: dict) -> None:
    body = msgspec.json.encode({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(events)})
    response = httpx.post(f"{url}/k8s-audit/{cluster}", content=body, timeout=30)
    assert response.status_code == 200, response.text


def _findings(url: str, cluster: str) -> list[dict]:
    return httpx.get(f"{url}/api/findings", params={"cluster": cluster, "limit": 1000}).json()["findings"]


def _eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


async def _publish_raw(bus_url: str, cluster: str, body: bytes) -> None:
    nc = await nats.connect(bus_url)
    try:
        partitions = 16
        await nc.jetstream().publish(
            layout.audit_subject(cluster, partitions),
            body,
            headers={layout.CLUSTER_HEADER: cluster, layout.EVENTS_HEADER: "1"},
        )
    finally:
        await nc.close()


async def _dead_letters(bus_url: str) -> list[tuple[str, dict[str, str], bytes]]:
    nc = await nats.connect(bus_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{layout.DEAD_PREFIX}.>", stream=layout.DEAD_STREAM)
        messages = await sub.fetch(10, timeout=2)
        return [(m.subject, dict(m.headers or {}), m.data) for m in messages]
    finally:
        await nc.close()


@pytest.fixture
def scaled_out(nats_url, pg_url, tmp_path):
    server = bus_server(pg_url, nats_url, tmp_path, intel_lists_in=tmp_path).start()
    worker = WorkerProcess(pg_url, nats_url, tmp_path, "worker", "--max-attempts", "2").start()
    yield server, worker
    worker.stop()
    server.stop()


def test_poison_batch_is_dead_lettered_and_settings_reach_the_worker(scaled_out, nats_url, tmp_path):
    server, worker = scaled_out
    url = server.url

    # A poison batch (not one event can be read) between two good batches of the same cluster.
    _post(url, "alpha", _event(1, user="system:anonymous", verb="get", resource="secrets"))
    asyncio.run(_publish_raw(nats_url, "alpha", b"\x00 this is not an audit batch"))
    _post(url, "alpha", _event(2, user="system:anonymous", verb="create", resource="configmaps"))
    status = wait_bus_drained(url, timeout=60)
    assert status["batches_dead"] == 1
    [dead] = status["dead_letters"]
    assert dead["cluster"] == "alpha" and dead["attempts"] == 2
    assert "no audit event could be read" in dead["reason"]
    kinds = {f["type"] for f in _findings(url, "alpha")}
    assert {"CredentialAccess:Kubernetes/SuccessfulAnonymousAccess", "Impact:Kubernetes/SuccessfulAnonymousAccess"} <= kinds
    [(subject, headers, body)] = asyncio.run(_dead_letters(nats_url))
    assert subject == "kubeguard.dead.alpha" and body.startswith(b"\x00 this is not")
    assert headers["Kg-Attempts"] == "2" and "no audit event could be read" in headers["Kg-Reason"]
    metrics = httpx.get(f"{url}/metrics").text
    assert "kubeguard_bus_dead_letters 1.0" in metrics

    # Disabling the detector stops findings on the worker at once; enabling it brings them back.
    detector_id = httpx.get(f"{url}/detector").json()["detectorIds"][0]
    assert httpx.post(f"{url}/detector/{detector_id}", json={"enable": False}).status_code == 200
    _post(url, "beta", _event(3, user="system:anonymous", verb="get", resource="secrets"))
    wait_bus_drained(url)
    assert _findings(url, "beta") == []
    assert httpx.post(f"{url}/detector/{detector_id}", json={"enable": True}).status_code == 200
    _post(url, "beta", _event(4, user="system:anonymous", verb="get", resource="secrets"))
    _eventually(lambda: len(_findings(url, "beta")) == 1, "a finding once the detector is enabled again")

    # A threat list activated through the API applies to the next batch the worker takes.
    listed = tmp_path / "threats.txt"
    listed.write_text(f"{LISTED_IP}\n")
    created = httpx.post(
        f"{url}/detector/{detector_id}/threatintelset",
        json={"name": "bad-actors", "format": "TXT", "location": str(listed), "activate": True},
    )
    assert created.status_code == 200, created.text
    _post(url, "gamma", _event(5, user="alice", verb="list", resource="pods", ip=LISTED_IP))
    _eventually(lambda: any("MaliciousIPCaller.Custom" in f["type"] for f in _findings(url, "gamma")), "intel")
    assert worker.process is not None and worker.process.poll() is None  # the same worker, never restarted
