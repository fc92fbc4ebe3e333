"""Open feeds: download into the cache with ETag/Last-Modified, keep the cache on failure, and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kubeguard.cli.intel import app
from kubeguard.intel.feeds import DEFAULT_FEEDS, Feed, FeedCache, load_feeds_config

from .conftest import Route

FIREHOL = b"# firehol_level1\n192.0.2.0/24\n198.51.100.0/24\n"
TOR = b"185.220.101.1\n185.220.101.2\n"


@pytest.fixture
def feeds(http_server):
    http_server.routes["/firehol"] = Route(FIREHOL, etag='"v1"', last_modified="Wed, 01 May 2024 10:00:00 GMT")
    http_server.routes["/tor"] = Route(TOR)
    return (
        Feed("firehol-level1", http_server.url("/firehol"), threat_names=("FireHOL level1",)),
        Feed("tor-exits", http_server.url("/tor"), "TOR_BULK", "tor"),
    )


def test_update_downloads_and_records_etag(tmp_path, feeds):
    cache = FeedCache(tmp_path)
    outcomes = cache.update(feeds, timeout=5)
    assert [(o.name, o.status) for o in outcomes] == [("firehol-level1", "updated"), ("tor-exits", "updated")]
    state = cache.state("firehol-level1")
    assert state is not None
    assert state.etag == '"v1"'
    assert state.last_modified == "Wed, 01 May 2024 10:00:00 GMT"
    assert state.entries == 2 and state.size == len(FIREHOL)
    assert state.fetched_at is not None and state.age() is not None and state.age() < 60
    assert cache.data_path("firehol-level1").read_bytes() == FIREHOL
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_second_update_is_a_conditional_get(tmp_path, feeds, http_server):
    cache = FeedCache(tmp_path)
    cache.update(feeds, timeout=5)
    http_server.requests.clear()
    outcomes = cache.update(feeds[:1], timeout=5)
    assert outcomes[0].status == "not-modified"
    path, headers = http_server.requests[0]
    assert path == "/firehol"
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Wed, 01 May 2024 10:00:00 GMT"


def test_changed_feed_replaces_the_cache(tmp_path, feeds, http_server):
    cache = FeedCache(tmp_path)
    cache.update(feeds, timeout=5)
    http_server.routes["/firehol"] = Route(b"203.0.113.0/24\n", etag='"v2"')
    assert cache.update(feeds[:1], timeout=5)[0].status == "updated"
    assert cache.state("firehol-level1").etag == '"v2"'
    (state, loaded), *_ = cache.load(kinds=("malicious",))
    assert loaded.parsed.ipset.contains("203.0.113.1")
    assert not loaded.parsed.ipset.contains("192.0.2.1")


@pytest.mark.parametrize(
    "broken",
    [
        Route(b"server error", status=500),
        Route(b"<html><body>Rate limited</body></html>\n"),  # an error page served with 200
        Route(b"\x00\x01binary" * 100),
    ],
    ids=["http-500", "html-page", "binary"],
)
def test_failed_update_keeps_the_cached_copy(tmp_path, feeds, http_server, broken):
    cache = FeedCache(tmp_path)
    cache.update(feeds, timeout=5)
    http_server.routes["/firehol"] = broken
    outcome = cache.update(feeds[:1], timeout=5, force=True)[0]
    assert outcome.status == "failed"
    assert cache.data_path("firehol-level1").read_bytes() == FIREHOL
    assert cache.state("firehol-level1").last_error == outcome.detail
    loaded = dict((state.name, item) for state, item in cache.load())
    assert loaded["firehol-level1"].parsed.ipset.contains("192.0.2.1")


def test_unreachable_feed_is_reported_and_others_still_update(tmp_path, feeds):
    dead = Feed("dead", "http://127.0.0.1:9/list", threat_names=())
    outcomes = FeedCache(tmp_path).update([dead, *feeds], timeout=1)
    assert [o.status for o in outcomes] == ["failed", "updated", "updated"]
    assert FeedCache(tmp_path).state("dead").fetched_at is None


def test_load_filters_by_kind_and_carries_threat_names(tmp_path, feeds):
    cache = FeedCache(tmp_path)
    cache.update(feeds, timeout=5)
    assert [state.name for state, _ in cache.load(kinds=("tor",))] == ["tor-exits"]
    (state, _), = cache.load(kinds=("malicious",))
    assert state.threat_names == ("FireHOL level1",)


def test_default_feeds_are_well_formed_and_cover_the_issue():
    names = {feed.name for feed in DEFAULT_FEEDS}
    assert {"firehol-level1", "spamhaus-drop", "spamhaus-edrop", "feodo-ipblocklist", "tor-exits"} <= names
    assert all(feed.url.startswith("https://") for feed in DEFAULT_FEEDS)
    assert [feed.kind for feed in DEFAULT_FEEDS if feed.name == "tor-exits"] == ["tor"]


def test_feeds_config_file(tmp_path):
    config = tmp_path / "feeds.toml"
    config.write_text(
        'include_defaults = true\n[[feed]]\nname = "tor-exits"\nurl = "https://mirror.example/tor"\n'
        'format = "TOR_EXIT_ADDRESSES"\nkind = "tor"\n[[feed]]\nname = "corp-intel"\n'
        'url = "https://intel.example/ips.csv"\nformat = "OTX_CSV"\nthreat_names = ["Corp C2"]\n'
    )
    feeds = {feed.name: feed for feed in load_feeds_config(config)}
    assert feeds["tor-exits"].url == "https://mirror.example/tor"
    assert feeds["corp-intel"].threat_names == ("Corp C2",)
    assert "spamhaus-drop" in feeds


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../etc", "url": "https://x"}, "feed name"),
        ({"name": "ok", "url": "https://x", "format": "JSON"}, "unknown format"),
        ({"name": "ok", "url": "https://x", "kind": "custom"}, "kind must be"),
    ],
)
def test_bad_feed_definitions_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Feed(**kwargs)


def write_config(tmp_path, feeds) -> str:
    lines = []
    for feed in feeds:
        lines += ["[[feed]]", f'name = "{feed.name}"', f'url = "{feed.url}"', f'format = "{feed.format}"']
        lines += [f'kind = "{feed.kind}"']
    config = tmp_path / "feeds.toml"
    config.write_text("\n".join(lines) + "\n")
    return str(config)


def test_cli_update_list_and_check(tmp_path, feeds):
    runner = CliRunner()
    cache_dir = str(tmp_path / "cache")
    config = write_config(tmp_path, feeds)
    result = runner.invoke(app, ["update", "--cache-dir", cache_dir, "--feeds", config, "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert "updated" in result.output and "firehol-level1" in result.output

    result = runner.invoke(app, ["list", "--cache-dir", cache_dir, "--feeds", config])
    assert result.exit_code == 0, result.output
    assert "firehol-level1" in result.output and "tor-exits" in result.output
    assert "never fetched" not in result.output

    trusted = tmp_path / "office.txt"
    trusted.write_text("198.51.100.7\n")
    result = runner.invoke(app, ["check", "198.51.100.7", "--cache-dir", cache_dir, "--trusted-list", str(trusted)])
    assert result.exit_code == 0, result.output
    assert "malicious list firehol-level1" in result.output
    assert "trusted list office" in result.output

    result = runner.invoke(app, ["check", "185.220.101.2", "--cache-dir", cache_dir])
    assert "tor list tor-exits" in result.output

    result = runner.invoke(app, ["check", "203.0.113.1", "--cache-dir", cache_dir])
    assert "on none of 2 threat lists" in result.output


def test_cli_update_exits_nonzero_when_a_feed_fails(tmp_path):
    config = tmp_path / "feeds.toml"
    config.write_text('[[feed]]\nname = "dead"\nurl = "http://127.0.0.1:9/x"\n')
    result = CliRunner().invoke(app, ["update", "--cache-dir", str(tmp_path), "--feeds", str(config), "--timeout", "1"])
    assert result.exit_code == 1
    assert "failed" in result.output
    assert json.loads((tmp_path / "dead.json").read_text())["last_error"]


def test_cli_check_rejects_a_non_ip(tmp_path):
    result = CliRunner().invoke(app, ["check", "not-an-ip", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2
