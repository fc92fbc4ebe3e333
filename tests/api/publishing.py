"""Helpers for the publishing tests: a recording HTTP receiver, feeding the lab batches, reading metrics."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from api.server import LAB_EVENTLISTS, Server

T = TypeVar("T")


@dataclass
class Received:
    at: float
    status: int
    body: bytes
    content_type: str
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """A local HTTP endpoint that records every POST and answers 500 to the first ``fail_first``."""

    fail_first: int = 0
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    base: str = ""
    #: What to answer on a path (status, body), as the real service does; else 200 and no body.
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self, path: str | None = None) -> list[bytes]:
        return [r.body for r in self.accepted(path)]

    def accepted(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status < 300 and (path is None or r.path == path)]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status, answer = receiver.answers.get(self.path, (200, b""))
                    if receiver.fail_first > 0:
                        status, answer = 500, b""
                        receiver.fail_first -= 1
                    receiver.requests.append(
                        Received(time.monotonic(), status, body, self.headers.get("Content-Type", ""), self.path,
                                 dict(self.headers.items()))
                    )
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                return

        return Handler


@contextmanager
def running_receiver(
    fail_first: int = 0, port: int = 0, answers: dict[str, tuple[int, bytes]] | None = None,
    receiver: Receiver | None = None,
) -> Iterator[Receiver]:
    """Serve ``receiver`` (or a new one) on ``port`` (0: any free one) until the block ends."""
    receiver = receiver or Receiver(fail_first=fail_first, answers=dict(answers or {}))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), receiver.handler())
    receiver.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    receiver.url = f"{receiver.base}/events"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def lab_batches() -> list[bytes]:
    with gzip.open(LAB_EVENTLISTS) as lines:
        return list(lines)


def with_new_audit_ids(batch: bytes, suffix: str) -> bytes:
    """The same EventList with every auditID changed, so the events count as new occurrences."""
    document = orjson.loads(batch)
    for item in document["items"]:
        item["auditID"] = f"{item['auditID']}-{suffix}"
    return orjson.dumps(document)


def feed(server: Server, batches: list[bytes], cluster: str = "lab") -> None:
    with httpx.Client(timeout=10) as client:
        for batch in batches:
            response = client.post(f"{server.url}/k8s-audit/{cluster}", content=batch)
            assert response.status_code == 200, response.text
    server.wait_drained(timeout=20)


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something other than None or False; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def metric_samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` by (name, labels)."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(server: Server, name: str, **labels: str) -> float | None:
    return metric_samples(server).get((name, frozenset(labels.items())))


def occurrences(server: Server) -> dict[str, float]:
    """Finding occurrences recorded so far, by outcome (created, updated, suppressed)."""
    totals: dict[str, float] = {}
    for (name, labels), value in metric_samples(server).items():
        if name == "kubeguard_findings_total":
            outcome = dict(labels)["outcome"]
            totals[outcome] = totals.get(outcome, 0) + value
    return totals


def detector_id(server: Server) -> str:
    [detector] = httpx.get(f"{server.url}/detector", timeout=5).json()["detectorIds"]
    return detector


def stored_findings(server: Server, detector: str) -> dict[str, dict[str, Any]]:
    """Every finding of ``detector`` exactly as GetFindings returns it on the wire, by id."""
    ids: list[str] = []
    token = ""
    while True:
        listed = httpx.post(
            f"{server.url}/detector/{detector}/findings",
            json={"maxResults": 50, **({"nextToken": token} if token else {})},
            timeout=5,
        ).json()
        ids += listed["findingIds"]
        token = listed.get("nextToken", "")
        if not token:
            break
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 50):
        response = httpx.post(
            f"{server.url}/detector/{detector}/findings/get", json={"findingIds": ids[start : start + 50]}, timeout=5
        )
        found.update({f["id"]: f for f in response.json()["findings"]})
    assert sorted(found) == sorted(ids)
    return found


def toml_value(value: Any) -> str:
    """A TOML value: JSON spells strings, numbers, booleans and arrays the same; tables are inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{orjson.dumps(str(k)).decode()} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return orjson.dumps(str(value)).decode()


def sinks_config(*sinks: dict[str, Any], serve: dict[str, Any] | None = None) -> str:
    lines = ["[serve]"] + [f"{key} = {toml_value(value)}" for key, value in (serve or {}).items()]
    for sink in sinks:
        lines.append("[[serve.sinks]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in sink.items()]
    return "\n".join(lines) + "\n"
