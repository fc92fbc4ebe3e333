"""Webhook ingest rate and webhook-to-finding latency of ``kubeguard serve``, against a bare echo baseline.

Both servers run as subprocesses on loopback in this run; the baseline is a FastAPI app that reads the
body and answers 200, so the ratio shows what durability (spool commit with fsync) and validation cost
over HTTP alone. Run: ``.venv/bin/python benchmarks/webhook.py [--rounds 5] [--clients 4]``.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "tests" / "data" / "lab-scenario" / "webhook-eventlists.jsonl.gz"
sys.path.insert(0, str(ROOT / "tests"))

from api.server import Server, free_port  # noqa: E402


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/k8s-audit/{cluster}")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def start_echo() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", f"import uvicorn, sys; sys.path.insert(0, {str(ROOT)!r}); "
         f"from benchmarks.webhook import echo_app; uvicorn.run(echo_app(), port={port}, log_level='warning')"],
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("echo server did not start")


def with_fresh_ids(body: bytes, tag: str) -> bytes:
    """The same batch with new auditIDs, so the pipeline's de-duplication does not skip a replay."""
    return body.replace(b'"auditID":"', f'"auditID":"{tag}-'.encode())


def ingest_rate(url: str, batches: list[tuple[bytes, int]], rounds: int, clients: int) -> float:
    """Events per second acknowledged, with ``clients`` concurrent senders."""
    work = [(with_fresh_ids(b, f"r{r}"), n) for r in range(rounds) for b, n in batches]
    lock = threading.Lock()

    def sender() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if not work:
                        return
                    body, _ = work.pop()
                response = client.post(f"{url}/k8s-audit/bench", content=body)
                assert response.status_code == 200, response.text

    total = sum(n for _, n in batches) * rounds
    threads = [threading.Thread(target=sender) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started)


def finding_latency(server: Server, body: bytes, samples: int) -> list[float]:
    """Seconds from POST to the finding being visible in the API, each on a fresh cluster (new finding id)."""
    latencies = []
    with httpx.Client(timeout=30) as client:
        for i in range(samples):
            cluster = f"latency-{i}"
            fresh = with_fresh_ids(body, cluster)
            started = time.perf_counter()
            client.post(f"{server.url}/k8s-audit/{cluster}", content=fresh)
            while not client.get(f"{server.url}/api/findings", params={"cluster": cluster}).json()["count"]:
                if time.perf_counter() - started > 30:
                    raise RuntimeError(f"no finding for {cluster} after 30 s")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
    return latencies


def echo_latency(url: str, body: bytes, samples: int) -> list[float]:
    latencies = []
    with httpx.Client(timeout=30) as client:
        for _ in range(samples):
            started = time.perf_counter()
            client.post(f"{url}/k8s-audit/echo", content=body)
            latencies.append(time.perf_counter() - started)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    with gzip.open(LAB) as stream:
        lines = list(stream)
    batches = [(line, line.count(b'"auditID"')) for line in lines]
    finding_batch = next(line for line in lines if b"priv-debug" in line)

    echo, echo_url = start_echo()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(f"sqlite:///{tmp}/bench.db", Path(tmp)).start()
        try:
            ingest_rate(echo_url, batches, 1, args.clients)  # warm-up
            base_rate = ingest_rate(echo_url, batches, args.rounds, args.clients)
            rate = ingest_rate(server.url, batches, args.rounds, args.clients)
            server.wait_drained(timeout=600)
            base = echo_latency(echo_url, finding_batch, args.samples)
            latency = finding_latency(server, finding_batch, args.samples)
        finally:
            server.stop()
            echo.terminate()
    print(f"events per batch: {statistics.mean(n for _, n in batches):.0f} (lab scenario EventLists)")
    print(f"ingest, {args.clients} clients: kubeguard {rate:,.0f} events/s; echo baseline {base_rate:,.0f} "
          f"events/s; ratio {rate / base_rate:.2f}")
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        ours, theirs = percentile(latency, q), percentile(base, q)
        print(f"webhook-to-finding {name}: {ours * 1000:.1f} ms; echo round trip {theirs * 1000:.1f} ms; "
              f"ratio {ours / theirs:.1f}")


if __name__ == "__main__":
    main()
