"""IntelIndex: which lists hold a caller address, by kind, and trusted lists kept apart."""

from __future__ import annotations

import hashlib

import pytest

from kubeguard.intel.feeds import FeedCache
from kubeguard.intel.formats import ListError
from kubeguard.intel.index import IntelIndex, IntelMatch, ThreatList
from kubeguard.intel.ipset import IPSet
from kubeguard.intel.sources import SourceError


def threat_list(name: str, kind: str, *entries: str) -> ThreatList:
    return ThreatList(name, kind, IPSet.of(entries), (f"{name} threat",), f"sha-{name}")


def test_match_reports_every_list_holding_the_address_with_its_kind():
    index = IntelIndex(
        [
            threat_list("acme-blocklist", "custom", "198.51.100.0/24"),
            threat_list("firehol-level1", "malicious", "198.51.100.23"),
            threat_list("tor-exits", "tor", "185.220.101.1"),
        ]
    )
    assert index.match("198.51.100.23") == [
        IntelMatch("custom", "acme-blocklist", ("acme-blocklist threat",), "198.51.100.23", "sha-acme-blocklist"),
        IntelMatch("malicious", "firehol-level1", ("firehol-level1 threat",), "198.51.100.23", "sha-firehol-level1"),
    ]
    assert [m.kind for m in index.match("185.220.101.1")] == ["tor"]
    assert index.match("203.0.113.1") == []
    assert index.match("not an ip") == []


def test_trusted_list_is_reported_separately_and_not_applied_by_match():
    """GuardDuty: an IP on both a trusted and a threat list raises nothing. The detector applies that rule
    with is_trusted(); match() still reports the threat list so `intel check` can explain both sides."""
    index = IntelIndex(
        [threat_list("acme-blocklist", "custom", "198.51.100.0/24")],
        [threat_list("office", "trusted", "198.51.100.7", "2001:db8::/32")],
    )
    assert index.is_trusted("198.51.100.7")
    assert [m.list_name for m in index.match("198.51.100.7")] == ["acme-blocklist"]
    assert not index.is_trusted("198.51.100.8")
    assert index.is_trusted("2001:db8::1234")
    assert index.is_trusted("::ffff:198.51.100.7")
    assert not index.is_trusted("garbage")
    assert index.trusted_by("198.51.100.7") == ["office"]


def test_ipv6_matches():
    index = IntelIndex([threat_list("v6", "custom", "2001:db8:bad::/48")])
    assert [m.list_name for m in index.match("2001:db8:bad::1")] == ["v6"]
    assert index.match("2001:db8:bae::1") == []


def test_duplicate_names_and_unknown_kinds_are_rejected():
    with pytest.raises(ValueError, match="named 'x'"):
        IntelIndex([threat_list("x", "custom", "192.0.2.1"), threat_list("x", "malicious", "192.0.2.2")])
    with pytest.raises(ValueError, match="kind must be"):
        IntelIndex([threat_list("x", "trusted", "192.0.2.1")])


def test_from_settings_combines_custom_trusted_tor_and_cached_feeds(tmp_path):
    custom = tmp_path / "acme.csv"
    custom.write_bytes(b"Indicator type, Indicator, Description\nIPv4, 198.51.100.23, c2\n")
    trusted = tmp_path / "office.txt"
    trusted.write_bytes(b"203.0.113.0/24\n")
    tor = tmp_path / "exit-addresses"
    tor.write_bytes(b"ExitNode AB\nExitAddress 185.220.101.9 2024-05-01 00:00:00\n")
    cache = FeedCache(tmp_path / "cache")
    cache.root.mkdir()
    cache.data_path("spamhaus-drop").write_bytes(b"192.0.2.0/24 ; SBL1\n")
    (cache.root / "spamhaus-drop.json").write_text(
        '{"name": "spamhaus-drop", "url": "https://x", "format": "TXT", "kind": "malicious",'
        ' "threat_names": ["Spamhaus DROP"], "fetched_at": 1.0}'
    )

    index = IntelIndex.from_settings(
        threat_lists=[f"acme={custom}:OTX_CSV"],
        trusted_lists=[str(trusted)],
        tor_exits=[str(tor)],
        use_default_feeds=True,
        cache_dir=cache.root,
    )
    assert [(m.kind, m.list_name) for m in index.match("198.51.100.23")] == [("custom", "acme")]
    assert index.match("198.51.100.23")[0].file_sha256 == hashlib.sha256(custom.read_bytes()).hexdigest()
    assert [(m.kind, m.list_name, m.threat_names) for m in index.match("192.0.2.5")] == [
        ("malicious", "spamhaus-drop", ("Spamhaus DROP",))
    ]
    assert [m.kind for m in index.match("185.220.101.9")] == ["tor"]
    assert index.is_trusted("203.0.113.9")

    offline = IntelIndex.from_settings(threat_lists=[str(custom)], use_default_feeds=False, cache_dir=cache.root)
    assert offline.match("192.0.2.5") == []


def test_from_settings_fails_loudly_on_a_broken_explicit_list(tmp_path):
    with pytest.raises(SourceError):
        IntelIndex.from_settings(trusted_lists=[str(tmp_path / "absent.txt")], use_default_feeds=False)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00" * 100)
    with pytest.raises(ListError):
        IntelIndex.from_settings(threat_lists=[str(binary)], use_default_feeds=False)


def test_empty_cache_gives_an_index_without_feeds(tmp_path):
    index = IntelIndex.from_settings(cache_dir=tmp_path / "nothing-here")
    assert index.lists == () and index.match("192.0.2.1") == []
