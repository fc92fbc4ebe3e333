"""Scale-out end to end: serve --bus, two workers, one worker and the serve process SIGKILLed mid-stream.

Every finding of every cluster, with its ``service.count``, must equal an offline scan of the same events.
"""

from __future__ import annotations

import threading
import time

import httpx

from bus.processes import (
    CONFIG,
    WorkerProcess,
    bus_server,
    event_lists,
    simulated_clusters,
    stored_counts,
    wait_bus_drained,
)
from kubeguard.config import load_settings
from kubeguard.scan import run_scan


def _offline(paths, workdir) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Per cluster, each finding's id and ``service.count`` from ``kubeguard scan``'s engine; and every type."""
    config = workdir / "scan.toml"
    config.write_text(CONFIG)
    settings = load_settings(config)
    expected, types = {}, []
    for cluster, path in paths.items():
        result = run_scan([str(path)], settings, cluster=cluster)
        expected[cluster] = {f["id"]: f["service"]["count"] for f in result.findings}
        types += [f["type"] for f in result.findings]
    return expected, types


def test_killed_worker_and_server_lose_nothing_and_count_nothing_twice(nats_url, pg_url, tmp_path):
    paths = simulated_clusters(tmp_path)
    bodies = {cluster: event_lists(path, 1000) for cluster, path in paths.items()}
    # Both clusters at once, as two API servers would send them.
    sends = [(c, b) for pair in zip(*bodies.values(), strict=False) for c, b in zip(bodies, pair, strict=True)]
    longest = max(bodies.values(), key=len)
    sends += [(next(c for c in bodies if bodies[c] is longest), b) for b in longest[len(sends) // 2 :]]

    server = bus_server(pg_url, nats_url, tmp_path).start()
    workers = [WorkerProcess(pg_url, nats_url, tmp_path, f"worker{n}", "--ack-wait", "2") for n in range(2)]
    for worker in workers:
        worker.start()
    sent = threading.Event()
    killed_server = threading.Event()
    try:

        def send_all() -> None:
            with httpx.Client(timeout=30) as client:
                for n, (cluster, body) in enumerate(sends):
                    if n == len(sends) * 2 // 3 and not killed_server.is_set():
                        server.kill()  # mid-stream; the batch below is sent again until acknowledged
                        killed_server.set()
                        server.start()
                    while True:
                        try:
                            response = client.post(f"{server.url}/k8s-audit/{cluster}", content=body)
                        except httpx.TransportError:
                            time.sleep(0.2)
                            continue
                        if response.status_code == 200:
                            break
                        assert response.status_code == 503, response.text
                        time.sleep(0.2)
            sent.set()

        sender = threading.Thread(target=send_all)
        sender.start()
        deadline = time.monotonic() + 60
        while "took partitions" not in workers[1].log() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # both workers are processing now
        workers[0].kill()
        sender.join(180)
        assert sent.is_set(), "the sender did not finish"
        status = wait_bus_drained(server.url)
        survivor = workers[1].log()
        assert status["batches_dead"] == 0, status
        expected, types = _offline(paths, tmp_path)
        for cluster in paths:
            assert stored_counts(server.url, cluster) == expected[cluster], cluster
        # The comparison covers state that order and crashes could break: learned baselines and first sightings.
        assert sum("AnomalousBehavior" in kind for kind in types) >= 10
        assert any(count > 1 for found in expected.values() for count in found.values())
        assert "took partitions" in survivor
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
