"""GuardDuty's ``remoteIpDetails`` for an address, from offline databases.

By default the data comes from geoip2fast, which ships MaxMind GeoLite2 country and ASN-name data inside its
wheel, so enrichment works with nothing to download. It has no city, coordinates or ASN number: those stay
at GuardDuty's "unknown" values (``"UNKNOWN"``, ``0.0``, ``"0"``). When the operator points at MaxMind
``.mmdb`` files (GeoLite2/GeoIP2 City or Country, and ASN or ISP), they are used first and geoip2fast only
fills what they lack.

Nothing is loaded at import: geoip2fast takes about half a second and tens of MB to load, which a CLI
invocation that never enriches should not pay. Lookups are cached per resolver (audit logs repeat the same
few callers), and every call returns a fresh dict the caller may modify.
"""

from __future__ import annotations

import ipaddress
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol

__all__ = ["UNKNOWN", "GeoResolver", "remote_ip_details"]

UNKNOWN = "UNKNOWN"
_GEOIP2FAST_DATA = "geoip2fast-asn-ipv6.dat.gz"  # country + ASN name, IPv4 and IPv6


class _Reader(Protocol):
    def get(self, ip: str) -> Any: ...


class _Geo(NamedTuple):
    city: str = UNKNOWN
    country_code: str = UNKNOWN
    country_name: str = UNKNOWN
    lat: float = 0.0
    lon: float = 0.0
    asn: str = "0"
    asn_org: str = UNKNOWN
    isp: str = UNKNOWN
    org: str = UNKNOWN


class GeoResolver:
    """Resolves addresses to ``remoteIpDetails`` dicts; thread-safe, loads its databases on first use.

    ``city_mmdb`` and ``asn_mmdb`` are paths to MaxMind databases (or open readers with a ``get(ip)``
    method); ``use_geoip2fast=False`` turns the bundled fallback off.
    """

    def __init__(
        self,
        city_mmdb: str | Path | _Reader | None = None,
        asn_mmdb: str | Path | _Reader | None = None,
        *,
        use_geoip2fast: bool = True,
        cache_size: int = 65536,
    ) -> None:
        self._sources: dict[str, str | Path | _Reader | None] = {"city": city_mmdb, "asn": asn_mmdb}
        self._readers: dict[str, _Reader | None] = {}
        self._use_geoip2fast = use_geoip2fast
        self._geoip2fast: Any = None
        self._lock = threading.Lock()
        self._cached = lru_cache(maxsize=cache_size)(self._resolve)

    def details(self, ip: str) -> dict[str, Any]:
        """The ``remoteIpDetails`` wire dict for ``ip``; private and unparseable addresses are UNKNOWN."""
        geo = self._cached(ip.strip())
        family = "ipAddressV6" if ":" in ip else "ipAddressV4"
        return {
            family: ip,
            "city": {"cityName": geo.city},
            "country": {"countryCode": geo.country_code, "countryName": geo.country_name},
            "geoLocation": {"lat": geo.lat, "lon": geo.lon},
            "organization": {"asn": geo.asn, "asnOrg": geo.asn_org, "isp": geo.isp, "org": geo.org},
        }

    def _resolve(self, ip: str) -> _Geo:
        try:
            address = ipaddress.ip_address(ip.partition("%")[0])
        except ValueError:
            return _Geo()
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return _Geo()
        text = str(address)
        geo = _from_city(self._reader("city"), text, _Geo())
        geo = _from_asn(self._reader("asn"), text, geo)
        if self._use_geoip2fast and (geo.country_code == UNKNOWN or geo.asn_org == UNKNOWN):
            geo = _from_geoip2fast(self._fast(), text, geo)
        return geo

    def _reader(self, kind: str) -> _Reader | None:
        if kind not in self._readers:
            with self._lock:
                if kind not in self._readers:
                    self._readers[kind] = _open(self._sources[kind])
        return self._readers[kind]

    def _fast(self) -> Any:
        if self._geoip2fast is None:
            with self._lock:
                if self._geoip2fast is None:
                    from geoip2fast import GeoIP2Fast

                    self._geoip2fast = GeoIP2Fast(geoip2fast_data_file=_GEOIP2FAST_DATA)
        return self._geoip2fast


def _open(source: str | Path | _Reader | None) -> _Reader | None:
    if source is None or hasattr(source, "get"):
        return source  # type: ignore[return-value]
    import maxminddb

    return maxminddb.open_database(str(source))


def _lookup(reader: _Reader | None, ip: str) -> dict[str, Any]:
    if reader is None:
        return {}
    try:
        record = reader.get(ip)
    except ValueError:  # an IPv6 address against an IPv4-only database
        return {}
    return record if isinstance(record, dict) else {}


def _from_city(reader: _Reader | None, ip: str, geo: _Geo) -> _Geo:
    record = _lookup(reader, ip)
    if not record:
        return geo
    country = record.get("country") or record.get("registered_country") or {}
    location = record.get("location") or {}
    return geo._replace(
        city=_name(record.get("city")) or geo.city,
        country_code=country.get("iso_code") or geo.country_code,
        country_name=_name(country) or geo.country_name,
        lat=float(location.get("latitude") or geo.lat),
        lon=float(location.get("longitude") or geo.lon),
    )


def _from_asn(reader: _Reader | None, ip: str, geo: _Geo) -> _Geo:
    record = _lookup(reader, ip)
    if not record:
        return geo
    asn_org = record.get("autonomous_system_organization") or geo.asn_org
    number = record.get("autonomous_system_number")
    return geo._replace(
        asn=str(number) if number else geo.asn,
        asn_org=asn_org,
        isp=record.get("isp") or asn_org,
        org=record.get("organization") or asn_org,
    )


def _from_geoip2fast(fast: Any, ip: str, geo: _Geo) -> _Geo:
    result = fast.lookup(ip)
    code = getattr(result, "country_code", "") or ""
    if getattr(result, "is_private", False) or len(code) != 2 or not code.isalpha():
        return geo
    if geo.country_code == UNKNOWN:
        geo = geo._replace(country_code=code, country_name=result.country_name or UNKNOWN)
    asn_name = getattr(result, "asn_name", "") or ""
    if geo.asn_org == UNKNOWN and asn_name:
        geo = geo._replace(asn_org=asn_name, isp=asn_name, org=asn_name)
    return geo


def _name(record: Any) -> str:
    if not isinstance(record, dict):
        return ""
    names = record.get("names") or {}
    return str(names.get("en", "")) if isinstance(names, dict) else ""


_default: GeoResolver | None = None
_default_lock = threading.Lock()


def remote_ip_details(ip: str) -> dict[str, Any]:
    """``remoteIpDetails`` from the process-wide default resolver (geoip2fast), built on first call."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = GeoResolver()
    return _default.details(ip)
