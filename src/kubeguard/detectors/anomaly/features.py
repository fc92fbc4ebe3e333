"""How an audit event looks to a behaviour profile: who did it, and the values of each feature.

Every event of every principal passes through here, so each function is cheap and memoises what is
costly (decoding ``user.extra``, parsing an address, looking up its ASN, normalising a user agent) in
small bounded caches keyed by the raw text.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import msgspec

from kubeguard.audit.event import AuditEvent, UserInfo

#: Feature names, as they appear in ``service.detection.anomaly``.
API = "kubernetesApi"
NAMESPACE = "namespace"
NETWORK = "network"
ASN_ORG = "asnOrg"
USER_AGENT = "userAgent"
IMAGE = "image"
PERMISSION = "permission"

UNKNOWN = "UNKNOWN"
_CACHE_LIMIT = 20_000


def _bounded_cache(function: Callable[[str], Any]) -> Callable[[str], Any]:
    """Memoise a one-string function; forget everything when full (the keys recur, so it refills fast)."""
    cache: dict[str, Any] = {}

    def cached(key: str) -> Any:
        value = cache.get(key)
        if value is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            value = cache[key] = function(key)
        return value

    cached.__doc__ = function.__doc__
    return cached


_principal_cache: dict[tuple[str, bytes], str] = {}


def principal(event: AuditEvent) -> str:
    """The identity a profile belongs to.

    EKS maps many people onto one IAM role and logs that role's name as ``username``; the session ARN
    in ``user.extra["arn"]`` (``assumed-role/ROLE/SESSION``) tells them apart and stays the same across
    the person's daily sessions, so it is the principal when present. Otherwise the username is.
    """
    user = event.user
    return principal_of(user.username, bytes(user.extra)) if user.extra else user.username


def principal_of(username: str, extra: bytes) -> str:
    """:func:`principal` from the username and the raw ``user.extra`` JSON."""
    if not extra:
        return username
    key = (username, extra)
    found = _principal_cache.get(key)
    if found is None:
        if len(_principal_cache) >= _CACHE_LIMIT:
            _principal_cache.clear()
        extras = UserInfo(username=username, extra=msgspec.Raw(extra)).extras
        arns = extras.get("arn") or []
        sessions = extras.get("sessionName") or []
        if arns:
            found = arns[0]
        elif sessions:
            found = f"{username}/{sessions[0]}"
        else:
            found = username
        _principal_cache[key] = found
    return found


def api(event: AuditEvent) -> str:
    """``list secrets``, ``create pods/exec`` or ``get /apis``: verb and resource[/subresource]."""
    ref = event.objectRef
    if ref is not None and ref.resource:
        return api_of(event.verb, ref.resource, ref.subresource, "")
    return api_of(event.verb, "", "", event.requestURI)


def api_of(verb: str, resource: str, subresource: str, request_uri: str) -> str:
    """:func:`api` from its parts; ``request_uri`` is read only for non-resource calls."""
    if resource:
        target = f"{resource}/{subresource}" if subresource else resource
    else:
        path = request_uri.split("?", 1)[0]
        target = "/".join(path.split("/")[:3]) or "/"
    return f"{verb} {target}"


@_bounded_cache
def network(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) around ``ip``: where a person works from, not the exact lease."""
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _asn_lookup() -> Callable[[str], dict[str, Any]] | None:
    try:
        from kubeguard.intel.geo import remote_ip_details
    except ImportError:
        return None
    return remote_ip_details


_remote_ip_details = _asn_lookup()


@_bounded_cache
def asn_org(ip: str) -> str:
    """The organisation owning ``ip``'s autonomous system; ``UNKNOWN`` for private or unmapped addresses."""
    if _remote_ip_details is None:
        return UNKNOWN
    try:
        details = _remote_ip_details(ip)
    except (ValueError, OSError):
        return UNKNOWN
    org = (details.get("organization") or {}).get("asnOrg") or UNKNOWN
    return str(org)


_PRODUCT = re.compile(r"^([A-Za-z][\w.\-]*)/v?(\d+)(?:\.(\d+))?")


@_bounded_cache
def user_agent(agent: str) -> str:
    """``kubectl/v1.30``: product and minor version, the part a person's tooling keeps for weeks.

    Build hashes, platforms and patch levels change with every upgrade and say nothing about who is
    calling, so they are dropped; a different product or release line is a different value.
    """
    if not agent:
        return UNKNOWN
    match = _PRODUCT.match(agent)
    if match is None:
        return agent.split(" ", 1)[0][:64]
    product, major, minor = match.groups()
    return f"{product}/v{major}.{minor}" if minor is not None else f"{product}/v{major}"


_minute_cache: dict[str, int] = {}


def event_seconds(event: AuditEvent) -> int:
    """Event time in epoch seconds (0 when absent); parsing is memoised per minute of the timestamp."""
    return seconds_of(event.event_time)


def seconds_of(stamp: str) -> int:
    """An RFC 3339 timestamp in epoch seconds (0 when unreadable)."""
    if len(stamp) < 19:
        return 0
    minute = stamp[:16]
    base = _minute_cache.get(minute)
    if base is None:
        if len(_minute_cache) >= _CACHE_LIMIT:
            _minute_cache.clear()
        try:
            parts = (int(minute[0:4]), int(minute[5:7]), int(minute[8:10]), int(minute[11:13]), int(minute[14:16]))
            base = calendar.timegm((*parts, 0, 0, 0, 0))
        except ValueError:
            return 0
        _minute_cache[minute] = base
    try:
        return base + int(stamp[17:19])
    except ValueError:
        return base
