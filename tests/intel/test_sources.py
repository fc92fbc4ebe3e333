"""Loading lists from paths, file:// and http(s):// URLs, within size and time bounds (real local server)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from kubeguard.intel.formats import ListError
from kubeguard.intel.sources import ListSpec, SourceError, fetch, load_list, parse_list_spec, read_location

from .conftest import Route


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("lists/bad.txt", ListSpec("lists/bad.txt", None, "bad")),
        ("lists/bad.txt:TXT", ListSpec("lists/bad.txt", "TXT", "bad")),
        ("lists/feed.xml:stix", ListSpec("lists/feed.xml", "STIX", "feed")),
        ("acme=lists/bad.csv:OTX_CSV", ListSpec("lists/bad.csv", "OTX_CSV", "acme")),
        ("https://host:8443/ips.txt", ListSpec("https://host:8443/ips.txt", None, "ips")),
        ("https://host:8443/ips:PROOF_POINT", ListSpec("https://host:8443/ips", "PROOF_POINT", "ips")),
        ("./a=b.txt", ListSpec("./a=b.txt", None, "a=b")),
        ("file:///srv/lists/tor:TOR_EXIT_ADDRESSES", ListSpec("file:///srv/lists/tor", "TOR_EXIT_ADDRESSES", "tor")),
    ],
)
def test_parse_list_spec(spec, expected):
    assert parse_list_spec(spec) == expected


@pytest.mark.parametrize("spec", ["x.txt:FOO", "lists/bad.csv:OTX_CVS", "acme=bad.txt:txtt"])
def test_an_unknown_format_suffix_is_named_as_such(spec):
    with pytest.raises(ValueError, match=r"unknown list format .* use one of TXT"):
        parse_list_spec(spec)


def test_empty_spec_is_an_error():
    with pytest.raises(ValueError):
        parse_list_spec("  ")


def test_plain_path_and_file_url_load_the_same_list(tmp_path):
    path = tmp_path / "corp blocklist.txt"
    path.write_bytes(b"192.0.2.0/24\n")
    by_path = load_list(str(path))
    by_url = load_list(path.as_uri())
    assert by_path.name == by_url.name == "corp blocklist"
    assert by_path.sha256 == by_url.sha256 == hashlib.sha256(b"192.0.2.0/24\n").hexdigest()
    assert by_url.parsed.ipset.contains("192.0.2.1")


def test_missing_file_and_remote_file_url_are_source_errors(tmp_path):
    with pytest.raises(SourceError, match="No such file"):
        read_location(str(tmp_path / "absent.txt"))
    with pytest.raises(SourceError, match="must be local"):
        read_location("file://evil.example/etc/passwd")
    with pytest.raises(SourceError, match="unsupported scheme"):
        read_location("s3://bucket/list.txt")


def test_local_file_over_the_cap_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"192.0.2.1\n" * 1000)
    with pytest.raises(SourceError, match="larger than the 5000-byte limit"):
        read_location(str(path), max_bytes=5000)


def test_http_list_loads_with_detected_format(http_server):
    body = b"Indicator type, Indicator, Description\nIPv4, 198.51.100.1, c2\n"
    http_server.routes["/otx.csv"] = Route(body)
    loaded = load_list(http_server.url("/otx.csv"))
    assert loaded.parsed.format == "OTX_CSV"
    assert loaded.parsed.ipset.contains("198.51.100.1")
    assert loaded.sha256 == hashlib.sha256(body).hexdigest()


def test_http_error_status_is_a_source_error(http_server):
    with pytest.raises(SourceError, match="HTTP 404"):
        read_location(http_server.url("/missing"))


def test_http_declared_length_over_the_cap_is_refused(http_server):
    http_server.routes["/big"] = Route(b"192.0.2.1\n" * 1000)
    with pytest.raises(SourceError, match="declared, over the 4096-byte limit"):
        read_location(http_server.url("/big"), max_bytes=4096)


def test_http_stream_without_length_is_cut_at_the_cap(http_server):
    http_server.routes["/endless"] = Route(stream_bytes=50_000_000)
    with pytest.raises(SourceError, match="larger than the 1000000-byte limit"):
        read_location(http_server.url("/endless"), max_bytes=1_000_000)


def test_http_timeout(http_server):
    http_server.routes["/slow"] = Route(b"192.0.2.1\n", delay=2.0)
    with pytest.raises(SourceError, match="timed out"):
        read_location(http_server.url("/slow"), timeout=0.3)


def test_unreachable_server_is_a_source_error():
    with pytest.raises(SourceError):
        read_location("http://127.0.0.1:9/list.txt", timeout=1)


def test_a_hostile_remote_list_is_refused(http_server):
    http_server.routes["/x.xml"] = Route(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')
    with pytest.raises(ListError, match="hostile"):
        load_list(http_server.url("/x.xml") + ":STIX")


def test_an_https_list_redirected_to_plain_http_is_refused():
    # Following https -> http would let anyone on the path rewrite the list (a trusted list included).
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            return httpx.Response(302, headers={"Location": "http://feeds.example/list.txt"})
        return httpx.Response(200, content=b"198.51.100.1\n")

    with httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True) as client:
        with pytest.raises(SourceError, match="refusing to leave https"):
            fetch(client, "https://feeds.example/list.txt")
        assert fetch(client, "http://feeds.example/list.txt").body == b"198.51.100.1\n"  # plain http, if asked for
