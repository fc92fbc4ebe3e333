"""IPSet: membership over addresses, CIDRs and ranges of both families, checked against ipaddress."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeguard.intel.ipset import IPSet, IPSetBuilder, parse_ip


def test_single_addresses_cidrs_and_ranges():
    ipset = IPSet.of(["198.51.100.1", "192.0.2.0/24", "203.0.113.10-203.0.113.20", "2001:db8::/32"])
    assert ipset.contains("198.51.100.1")
    assert not ipset.contains("198.51.100.2")
    assert ipset.contains("192.0.2.0") and ipset.contains("192.0.2.255")
    assert not ipset.contains("192.0.3.0")
    assert ipset.contains("203.0.113.10") and ipset.contains("203.0.113.20")
    assert not ipset.contains("203.0.113.9") and not ipset.contains("203.0.113.21")
    assert ipset.contains("2001:db8:ffff::1")
    assert not ipset.contains("2001:db9::1")
    assert len(ipset) == 4


def test_ipv4_and_ipv6_do_not_alias():
    """The integer 3221225985 is 192.0.2.1 in IPv4 and ::c000:201 in IPv6; they must not match each other."""
    v4_only = IPSet.of(["192.0.2.1"])
    v6_only = IPSet.of(["::c000:201"])
    assert not v4_only.contains("::c000:201")
    assert not v6_only.contains("192.0.2.1")


def test_ipv4_mapped_ipv6_address_matches_the_ipv4_list():
    ipset = IPSet.of(["192.0.2.0/24"])
    assert ipset.contains("::ffff:192.0.2.7")
    assert IPSet.of(["::ffff:198.51.100.0/120"]).contains("198.51.100.9")


def test_zone_index_is_ignored_and_garbage_is_never_a_member():
    ipset = IPSet.of(["fe80::/10", "0.0.0.0/0"])
    assert ipset.contains("fe80::1%eth0")
    for junk in ["", "not-an-ip", "1.2.3", "1.2.3.4.5", "300.1.1.1", "1.2.3.4\x00", "01.2.3.4", " 1.2.3.4"]:
        assert not ipset.contains(junk), junk


def test_host_bits_in_a_cidr_are_accepted_as_the_network():
    assert IPSet.of(["192.0.2.77/24"]).contains("192.0.2.1")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("192.0.2.0/33", "not a CIDR"),
        ("999.1.1.1", "not an IP address"),
        ("192.0.2.9-192.0.2.1", "ends before it starts"),
        ("192.0.2.1-2001:db8::1", "mixes IPv4 and IPv6"),
        ("   ", "empty"),
    ],
)
def test_bad_entries_raise_with_a_reason(entry, reason):
    with pytest.raises(ValueError, match=reason):
        IPSetBuilder().add(entry)


def test_overlapping_and_adjacent_entries_merge():
    ipset = IPSet.of(["10.0.0.0/24", "10.0.1.0/24", "10.0.0.5", "10.0.0.0-10.0.2.255"])
    assert ipset.interval_count == 1
    assert list(ipset.intervals(4)) == [(int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.0.2.255")))]
    assert len(ipset) == 4


def test_duplicates_count_once_and_empty_set_is_falsy():
    assert len(IPSet.of(["192.0.2.1", "192.0.2.1"])) == 1
    assert not IPSet()
    assert not IPSet().contains("192.0.2.1")


def test_parse_ip_keys():
    assert parse_ip("0.0.0.1") == (4, 1)
    assert parse_ip("::1") == (6, 1)
    assert parse_ip("::ffff:0.0.0.1") == (4, 1)
    assert parse_ip("bogus") is None


networks_v4 = st.builds(
    lambda addr, prefix: ipaddress.ip_network((addr, prefix), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(8, 32),
)
networks_v6 = st.builds(
    lambda addr, prefix: ipaddress.ip_network((addr, prefix), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(16, 128),
)


@settings(max_examples=200)
@given(
    networks=st.lists(st.one_of(networks_v4, networks_v6), min_size=1, max_size=30),
    probes_v4=st.lists(st.integers(0, 2**32 - 1), max_size=20),
    probes_v6=st.lists(st.integers(0, 2**128 - 1), max_size=20),
)
def test_membership_agrees_with_ipaddress(networks, probes_v4, probes_v6):
    ipset = IPSet.of(str(network) for network in networks)
    probes = [ipaddress.IPv4Address(value) for value in probes_v4]
    probes += [ipaddress.IPv6Address(value) for value in probes_v6]
    probes += [network.network_address for network in networks] + [network.broadcast_address for network in networks]
    for probe in probes:
        if isinstance(probe, ipaddress.IPv6Address) and probe.ipv4_mapped is not None:
            continue  # mapped addresses are deliberately looked up as IPv4
        expected = any(probe in network for network in networks if network.version == probe.version)
        if probe.version == 4:  # a v6 entry covering ::ffff:a.b.c.d names the same host
            mapped = ipaddress.IPv6Address(f"::ffff:{probe}")
            expected = expected or any(mapped in network for network in networks if network.version == 6)
        assert ipset.contains(str(probe)) == expected, (probe, networks)
