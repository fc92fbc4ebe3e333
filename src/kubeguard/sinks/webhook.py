"""Generic webhook: POST each event as JSON, optionally signed with HMAC-SHA256.

The signature covers the timestamp and the body, ``sha256=hex(HMAC(secret, "{timestamp}.{body}"))``, in
``X-Kubeguard-Signature`` with the timestamp in ``X-Kubeguard-Timestamp`` (Unix seconds), so a receiver
can refuse replays older than a few minutes. ``X-Kubeguard-Finding-Id`` lets it deduplicate retries, and
``X-Kubeguard-Console-Url`` carries the console link whatever the format.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from kubeguard.sinks.delivery import Item, SinkEnv
from kubeguard.sinks.http import HttpTransport, redacted
from kubeguard.sinks.options import WebhookOptions

SIGNATURE_HEADER = "X-Kubeguard-Signature"
TIMESTAMP_HEADER = "X-Kubeguard-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookDestination:
    batch_size = 1

    def __init__(self, options: WebhookOptions, env: SinkEnv) -> None:
        self.name = options.name or f"http:{redacted(options.url)}"
        self.url = options.url
        self.secret = options.hmac_secret
        self.renderer = env.renderer
        content_type = "text/plain; charset=utf-8" if env.renderer.format == "text" else "application/json"
        self.http = HttpTransport(options.timeout_seconds, {"Content-Type": content_type, **options.headers})

    def deliver(self, items: list[Item]) -> None:
        for item in items:
            body = self.renderer.body(item)
            headers = {"X-Kubeguard-Finding-Id": str(item.finding.get("id", ""))}
            if item.link:
                headers["X-Kubeguard-Console-Url"] = item.link
            if self.secret:
                stamp = str(int(time.time()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = signature(self.secret, stamp, body)
            self.http.post(self.url, body, headers)

    def close(self) -> None:
        self.http.close()
