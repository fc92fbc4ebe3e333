"""``nextToken`` for the list operations: an opaque, tamper-evident offset.

The token carries the offset into the (stably ordered) result and a digest of the query it belongs to, so
a token replayed with different criteria is refused instead of silently skipping results.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson

from kubeguard.api.errors import BadRequest

T = TypeVar("T")


def _query_digest(query: Any) -> str:
    return hashlib.sha256(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def encode_token(offset: int, query: Any) -> str:
    raw = orjson.dumps({"o": offset, "q": _query_digest(query)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: Any) -> int:
    """The offset a token points at; 0 for no token."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        digest = data["q"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise BadRequest("nextToken is not valid") from exc
    if offset < 0 or digest != _query_digest(query):
        raise BadRequest("nextToken does not belong to this request")
    return offset


def page(items: Sequence[T], token: str | None, limit: int, query: Any) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token for the next one (None on the last page)."""
    start = decode_token(token, query)
    chunk = list(items[start : start + limit])
    end = start + len(chunk)
    return chunk, (encode_token(end, query) if end < len(items) else None)


def encode_position(position: Any, query: Any) -> str:
    """A token for a keyset position (any JSON value) inside the result of ``query``."""
    raw = orjson.dumps({"p": position, "q": _query_digest(query)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(token: str | None, query: Any) -> Any:
    """The keyset position a token carries; None for no token. Offset tokens are refused."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        position = data["p"]
        digest = data["q"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise BadRequest("nextToken is not valid") from exc
    if digest != _query_digest(query):
        raise BadRequest("nextToken does not belong to this request")
    return position
