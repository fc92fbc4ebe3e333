"""SIGKILL a real ``kubeguard serve`` mid-stream, restart it, and get exactly what an offline scan finds.

Two simulated clusters under attack (six hours of learning first, so the anomaly detectors' baselines
matter) are POSTed as EventLists, one request at a time per cluster as an API server sends them; a
request that gets no 200 is sent again, as the API server does. The server is killed twice while the
stream and detection are under way, and a few acknowledged batches are sent again (the crash between the
spool's commit and the 200 makes the API server resend a batch the spool already holds). Afterwards every
finding, with its ``service.count``, must equal ``kubeguard scan`` of the same events.
"""

from __future__ import annotations

import time

import httpx
import orjson
from api.server import Server

from batch.traffic import SETTINGS_TOML, comparable, offline_scan, simulated


def event_lists(pairs, size: int) -> list[tuple[str, bytes]]:
    """(cluster, EventList body) in stream order, ``size`` events of a cluster per list."""
    lists: list[tuple[str, bytes]] = []
    pending: dict[str, list[dict]] = {}
    for cluster, raw in pairs:
        items = pending.setdefault(cluster, [])
        items.append(orjson.loads(raw))
        if len(items) == size:
            lists.append((cluster, orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})))
            pending[cluster] = []
    for cluster, items in pending.items():
        if items:
            lists.append((cluster, orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})))
    return lists


def send_until_acknowledged(server: Server, cluster: str, body: bytes, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            response = httpx.post(f"{server.url}/k8s-audit/{cluster}", content=body, timeout=10)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("a batch was never acknowledged")


def test_sigkill_mid_stream_then_restart_equals_the_offline_scan(make_server):
    pairs = simulated()
    lists = event_lists(pairs, 1000)
    server = make_server(SETTINGS_TOML)
    kills = {len(lists) // 4, (3 * len(lists)) // 5}
    resent = [*lists[: len(lists) // 2], *lists[len(lists) // 2 - 3 :]]  # three batches arrive twice
    deadline = time.monotonic() + 240
    for index, (cluster, body) in enumerate(resent):
        if index in kills:
            server.kill()  # detection is behind the webhook here: batches are acknowledged and pending
            server.start()
        send_until_acknowledged(server, cluster, body, deadline)
    totals = server.wait_drained(timeout=120)
    assert totals["batches_failed"] == 0
    found = httpx.get(f"{server.url}/api/findings", params={"limit": 1000}, timeout=30).json()["findings"]
    expected = offline_scan(pairs)
    assert any(f["type"].split("/")[1].startswith("AnomalousBehavior") for f in expected.values())
    assert {f["id"]: comparable(f) for f in found} == {k: comparable(v) for k, v in expected.items()}
