"""remoteIpDetails (reference §2.4): UNKNOWN for private addresses, real data for public ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubeguard.intel.geo import GeoResolver, remote_ip_details

UNKNOWN_DETAILS = {
    "city": {"cityName": "UNKNOWN"},
    "country": {"countryCode": "UNKNOWN", "countryName": "UNKNOWN"},
    "geoLocation": {"lat": 0.0, "lon": 0.0},
    "organization": {"asn": "0", "asnOrg": "UNKNOWN", "isp": "UNKNOWN", "org": "UNKNOWN"},
}


@pytest.mark.parametrize(
    ("ip", "field"),
    [
        ("10.0.12.7", "ipAddressV4"),
        ("192.168.1.1", "ipAddressV4"),
        ("127.0.0.1", "ipAddressV4"),
        ("169.254.169.254", "ipAddressV4"),
        ("100.64.0.1", "ipAddressV4"),
        ("::1", "ipAddressV6"),
        ("fd00::1", "ipAddressV6"),
        ("fe80::1%eth0", "ipAddressV6"),
        ("::ffff:10.0.0.1", "ipAddressV6"),
        ("not-an-ip", "ipAddressV4"),
    ],
)
def test_private_and_reserved_addresses_are_unknown(ip, field):
    assert remote_ip_details(ip) == {field: ip, **UNKNOWN_DETAILS}


def test_public_ipv4_gets_country_and_as_organisation_from_geoip2fast():
    details = remote_ip_details("8.8.8.8")
    assert details["ipAddressV4"] == "8.8.8.8"
    assert details["country"] == {"countryCode": "US", "countryName": "United States"}
    assert details["organization"]["asnOrg"] == "GOOGLE"
    assert isinstance(details["geoLocation"]["lat"], float)
    assert isinstance(details["organization"]["asn"], str)


def test_public_ipv6():
    details = remote_ip_details("2001:4860:4860::8888")
    assert details["ipAddressV6"] == "2001:4860:4860::8888"
    assert details["country"]["countryCode"] == "US"


def test_each_call_returns_a_fresh_dict():
    first = remote_ip_details("1.1.1.1")
    first["country"]["countryCode"] = "XX"
    assert remote_ip_details("1.1.1.1")["country"]["countryCode"] != "XX"


class FakeMmdb:
    """Stands in for a maxminddb Reader: same get(ip) -> record dict contract, GeoLite2 record shapes."""

    def __init__(self, records):
        self.records = records
        self.calls = 0

    def get(self, ip):
        self.calls += 1
        return self.records.get(ip)


def test_mmdb_city_and_asn_records_fill_every_field():
    city = FakeMmdb(
        {
            "81.2.69.160": {
                "city": {"names": {"en": "Frankfurt am Main"}},
                "country": {"iso_code": "DE", "names": {"en": "Germany"}},
                "location": {"latitude": 50.11, "longitude": 8.68},
            }
        }
    )
    asn = FakeMmdb({"81.2.69.160": {"autonomous_system_number": 64500, "autonomous_system_organization": "EX-AS"}})
    details = GeoResolver(city, asn, use_geoip2fast=False).details("81.2.69.160")
    assert details == {
        "ipAddressV4": "81.2.69.160",
        "city": {"cityName": "Frankfurt am Main"},
        "country": {"countryCode": "DE", "countryName": "Germany"},
        "geoLocation": {"lat": 50.11, "lon": 8.68},
        "organization": {"asn": "64500", "asnOrg": "EX-AS", "isp": "EX-AS", "org": "EX-AS"},
    }


def test_mmdb_is_not_consulted_for_private_addresses_and_lookups_are_cached():
    city = FakeMmdb({})
    resolver = GeoResolver(city, use_geoip2fast=False)
    resolver.details("10.0.0.1")
    assert city.calls == 0
    resolver.details("81.2.69.161")
    resolver.details("81.2.69.161")
    assert city.calls == 1


def test_missing_mmdb_record_falls_back_to_geoip2fast():
    details = GeoResolver(FakeMmdb({}), FakeMmdb({})).details("8.8.8.8")
    assert details["country"]["countryCode"] == "US"
    assert details["city"]["cityName"] == "UNKNOWN"


def test_importing_kubeguard_intel_does_not_load_geo_databases():
    code = (
        "import sys, kubeguard.intel.geo, kubeguard.intel.index, kubeguard.cli.intel;"
        "print('geoip2fast' in sys.modules, 'maxminddb' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


def test_a_configured_mmdb_path_is_opened_with_maxminddb(tmp_path):
    import maxminddb

    broken = tmp_path / "GeoLite2-City.mmdb"
    broken.write_bytes(b"this is not a MaxMind database" * 10)
    with pytest.raises(maxminddb.InvalidDatabaseError):
        GeoResolver(city_mmdb=broken).details("8.8.8.8")
