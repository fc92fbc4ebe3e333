"""A real HTTP proxy in front of moto that misbehaves the way CloudWatch Logs does under load.

moto answers FilterLogEvents faithfully but never throttles, never returns an empty page that still has
a ``nextToken``, and ignores ``logStreamNamePrefix`` (so it also stands in for a server that ignores the
filter). This proxy forwards every request to moto and, on demand, answers the next FilterLogEvents calls
with ``ThrottlingException`` or puts an empty page carrying a token before every real page.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

FILTER_TARGET = "Logs_20140328.FilterLogEvents"
EMPTY_PREFIX = "kg-empty:"


class CloudWatchProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.throttle_next = 0
        self.empty_pages = False
        self.filter_calls = 0
        self.throttled = 0
        self.empty_served = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> CloudWatchProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _decide(self, body: dict) -> tuple[str, dict]:
        """What to do with one FilterLogEvents request: forward (maybe rewritten), throttle or empty."""
        with self._lock:
            self.filter_calls += 1
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self.throttled += 1
                return "throttle", body
            token = body.get("nextToken", "")
            if token.startswith(EMPTY_PREFIX):
                original = base64.urlsafe_b64decode(token[len(EMPTY_PREFIX) :]).decode()
                body = {key: value for key, value in body.items() if key != "nextToken"}
                if original:
                    body["nextToken"] = original
                return "forward", body
            if self.empty_pages:
                self.empty_served += 1
                return "empty", body
            return "forward", body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                if self.headers.get("x-amz-target") == FILTER_TARGET:
                    action, body = proxy._decide(json.loads(raw))
                    if action == "throttle":
                        self._reply(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                        return
                    if action == "empty":
                        token = EMPTY_PREFIX + base64.urlsafe_b64encode(body.get("nextToken", "").encode()).decode()
                        self._reply(200, {"events": [], "nextToken": token, "searchedLogStreams": []})
                        return
                    raw = json.dumps(body).encode()
                response = httpx.post(proxy.upstream + self.path, content=raw, headers=headers, timeout=30)
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def _reply(self, status: int, document: dict) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("content-type", "application/x-amz-json-1.1")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
