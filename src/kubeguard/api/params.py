"""Reading GuardDuty request members with the checks and messages the real service gives.

Handlers take the JSON body as a dict and pull members through :class:`Params`, which raises
:class:`~kubeguard.api.errors.BadRequest` naming the member, so a wrong type never turns into a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from kubeguard.api.errors import BadRequest

#: Request bodies of the GuardDuty operations are small; anything larger is refused before parsing.
MAX_API_BODY_BYTES = 1024 * 1024
_MISSING = object()


async def read_body(request: Request) -> bytes:
    """The request body, refused once it passes ``MAX_API_BODY_BYTES`` instead of buffered whole.

    Signature checks read the body before anyone is authenticated, so the bound applies while streaming;
    the body is kept on the request (where Starlette keeps it) for the handler's own read.
    """
    cached = getattr(request, "_body", None)
    if cached is not None:
        return cached
    too_large = BadRequest(f"request body is over {MAX_API_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_API_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_API_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    request._body = b"".join(chunks)
    return request._body


async def json_body(request: Request) -> Params:
    """The request's JSON object (empty when there is no body)."""
    raw = await read_body(request)
    if not raw.strip():
        return Params({})
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return Params(data)


class Params:
    """Typed access to a request's members."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise BadRequest(f"{name} is required")
            return _MISSING
        return value

    def string(
        self, name: str, *, required: bool = False, default: str | None = None, max_length: int = 4096
    ) -> str | None:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
        if len(value) > max_length:
            raise BadRequest(f"{name} must be at most {max_length} characters")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], *, default: str | None = None) -> str | None:
        value = self.string(name, default=default)
        if value is not None and value not in allowed:
            raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
        return value

    def boolean(self, name: str, *, required: bool = False, default: bool | None = None) -> bool | None:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be a boolean")
        return value

    def integer(self, name: str, *, low: int, high: int, default: int | None = None) -> int | None:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadRequest(f"{name} must be an integer from {low} to {high}")
        return value

    def strings(self, name: str, *, required: bool = False, max_items: int = 50) -> list[str]:
        value = self._get(name, required)
        if value is _MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest(f"{name} must be a list of strings")
        if len(value) > max_items:
            raise BadRequest(f"{name} must have at most {max_items} items")
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self._get(name, False)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            raise BadRequest(f"{name} must be an object")
        return value

    def tags(self) -> dict[str, str]:
        tags = self.mapping("tags") or {}
        if len(tags) > 50 or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise BadRequest("tags must map at most 50 string keys to string values")
        return tags


def query_max_results(request: Request, *, high: int, default: int) -> int:
    """``maxResults`` from the query string of a GET list call."""
    raw = request.query_params.get("maxResults")
    if raw is None:
        return default
    # isdigit() alone passes "²" and 5,000-digit strings, on which int() raises (a 500, not a 400).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= high:
        raise BadRequest(f"maxResults must be an integer from 1 to {high}")
    return int(raw)
