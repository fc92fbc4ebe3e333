"""The HTTP transport every webhook-style sink shares: one client, statuses mapped to retry or refuse."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from kubeguard.sinks.delivery import Item, http_failure


class HttpTransport:
    def __init__(self, timeout: float, headers: Mapping[str, str] | None = None, verify: bool = True) -> None:
        self._client = httpx.Client(timeout=timeout, headers=dict(headers or {}), verify=verify)

    def post(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """POST ``body``; returns a 2xx response, raises DeliveryError/PermanentFailure otherwise."""
        response = self._client.post(url, content=body, headers=dict(headers or {}))
        if not response.is_success:
            raise http_failure(response.status_code, response.text)
        return response

    def close(self) -> None:
        self._client.close()


class JsonPoster:
    """A destination that POSTs one JSON document per finding to one URL (chat and paging webhooks)."""

    batch_size = 1

    def __init__(self, name: str, url: str, timeout: float, build: Callable[[Item], Any]) -> None:
        self.name = name
        self.url = url
        self.build = build
        self.http = HttpTransport(timeout, {"Content-Type": "application/json"})

    def deliver(self, items: list[Item]) -> None:
        for item in items:
            self.http.post(self.url, orjson.dumps(self.build(item)))

    def close(self) -> None:
        self.http.close()


def redacted(url: str) -> str:
    """``url`` without what a webhook URL carries as its secret: userinfo, query, fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def host_only(url: str) -> str:
    """Scheme and host of ``url``: chat webhook paths are themselves the secret."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))
