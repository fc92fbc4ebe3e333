"""Verify AWS Signature Version 4 on incoming requests, as boto3 and the AWS CLI sign them.

The canonical request is rebuilt from what arrived (AWS docs, "Create a canonical request"): method,
URI-encoded path (the path as sent, encoded once more, as botocore does for every service but S3),
canonical query string, the signed headers, and the SHA-256 of the body. The signature is compared in
constant time. Only the header form (``Authorization: AWS4-HMAC-SHA256 ...``) is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far the client's clock may be from ours (AWS allows 15 minutes).
MAX_CLOCK_SKEW = timedelta(minutes=15)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


class SignatureError(Exception):
    """The request is not signed, or not signed correctly; the message says why (without secrets)."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    #: The path exactly as sent (still percent-encoded), e.g. ASGI ``raw_path``.
    raw_path: str
    #: The raw query string, without ``?``.
    query: str
    #: Header (name, value) pairs, names in any case, repeated names allowed.
    headers: Sequence[tuple[str, str]]
    body: bytes


#: The signing name of the API kubeguard answers (botocore's GuardDuty model: signingName "guardduty").
SERVICE = "guardduty"


def verify(
    request: SignedRequest,
    secret_for: Callable[[str], str | None],
    *,
    now: datetime | None = None,
    region: str | None = None,
    services: tuple[str, ...] = (SERVICE,),
) -> str:
    """Check the signature; return the access key id that signed, or raise :class:`SignatureError`.

    ``region`` is the service's configured region: a signature scoped to another region is refused, as
    AWS refuses it, so a request signed for one deployment cannot be replayed against another.
    ``services`` are the signing names this endpoint answers to (``guardduty``, and ``detective`` for the
    Detective-compatible routes).
    """
    headers = _header_map(request.headers)
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        raise SignatureError("missing or malformed AWS4-HMAC-SHA256 Authorization header")
    access_key, _, scope = match["credential"].partition("/")
    scope_parts = scope.split("/")
    if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
        raise SignatureError("malformed credential scope")
    if scope_parts[2] not in services:
        # A signature made for another AWS service with the same key must not open this API.
        raise SignatureError(f"credential scope is for service {scope_parts[2]!r}, not {' or '.join(services)}")
    if region is not None and scope_parts[1] != region:
        raise SignatureError(f"credential scope is for region {scope_parts[1]!r}, this service is in {region!r}")
    secret = secret_for(access_key)
    if not secret:  # an access key configured without a secret ("AKID" instead of "AKID:secret") signs nothing
        raise SignatureError("unknown access key")
    amz_date = headers.get("x-amz-date", "")
    _check_date(amz_date, scope_parts[0], now or datetime.now(UTC))
    signed_headers = match["signed"].split(";")
    if "host" not in signed_headers:
        raise SignatureError("the host header must be signed")
    canonical = canonical_request(request, headers, signed_headers)
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret, *scope_parts[:3])
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError("signature does not match")
    return access_key


def _header_map(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with commas, values trimmed and spaces collapsed."""
    merged: dict[str, list[str]] = {}
    for name, value in pairs:
        merged.setdefault(name.lower(), []).append(" ".join(value.split()))
    return {name: ",".join(values) for name, values in merged.items()}


def _check_date(amz_date: str, scope_date: str, now: datetime) -> None:
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError("missing or malformed X-Amz-Date header") from exc
    if amz_date[:8] != scope_date:
        raise SignatureError("credential scope date does not match X-Amz-Date")
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError("request time is too far from the server's time")


def canonical_request(request: SignedRequest, headers: dict[str, str], signed_headers: list[str]) -> str:
    canonical_headers = "".join(f"{name}:{headers.get(name, '')}\n" for name in signed_headers)
    # Always the hash of the body that arrived: an ``X-Amz-Content-Sha256`` header is the client's claim,
    # and trusting it would let a captured signed request be replayed with any other body.
    payload_hash = hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        [
            request.method.upper(),
            quote(request.raw_path or "/", safe="/~"),
            canonical_query(request.query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
