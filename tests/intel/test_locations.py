"""Which ThreatIntelSet/IPSet locations an API caller may name (``[intel] allowed_locations``)."""

from __future__ import annotations

import pytest

from kubeguard.intel.locations import LocationPolicy, LocationRefused


def policy(tmp_path, *prefixes: str, private: bool = False, addresses: dict[str, list[str]] | None = None):
    table = addresses or {}
    base = LocationPolicy.from_settings([str(tmp_path), *prefixes], private)
    return LocationPolicy(base.directories, base.url_prefixes, private, lambda host: table.get(host, []))


def test_regular_files_inside_an_allowed_directory_pass(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "list.txt").write_text("203.0.113.7\n")
    checker = policy(tmp_path)
    checker.check(str(tmp_path / "sub" / "list.txt"))
    checker.check(f"file://{tmp_path}/sub/list.txt")
    checker.check(str(tmp_path / "sub" / "not-yet-there.txt"))  # the reader reports it as missing


@pytest.mark.parametrize("location", ["/etc/passwd", "/dev/kmsg", "file://otherhost/x", "ftp://h/x", "../x"])
def test_everything_else_on_disk_is_refused(tmp_path, location):
    with pytest.raises(LocationRefused):
        policy(tmp_path).check(location)


def test_a_link_out_of_the_directory_and_a_device_inside_it_are_refused(tmp_path):
    allowed = tmp_path / "lists"
    allowed.mkdir()
    (allowed / "out").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "elsewhere.txt").write_text("x")
    (allowed / "null").symlink_to("/dev/null")
    checker = LocationPolicy.from_settings([str(allowed)])
    for name in ("out", "null", "."):
        with pytest.raises(LocationRefused):
            checker.check(str(allowed / name))


def test_https_needs_an_allowed_prefix_and_a_public_host(tmp_path):
    table = {"lists.example": ["93.184.216.34"], "intranet": ["10.1.2.3"], "mixed": ["8.8.8.8", "127.0.0.1"]}
    checker = policy(tmp_path, "https://lists.example/", "https://intranet/", "https://mixed/", addresses=table)
    checker.check("https://lists.example/bad.txt")
    for location in ("https://intranet/x", "https://mixed/x", "https://nowhere.example/x", "https://other/x"):
        with pytest.raises(LocationRefused):
            checker.check(location)
    permissive = policy(tmp_path, "https://intranet/", private=True, addresses=table)
    permissive.check("https://intranet/x")


def test_the_default_allows_public_https_and_kubeguards_own_lists_folder():
    checker = LocationPolicy.from_settings([])
    assert checker.url_prefixes == ("https://",)
    assert checker.directories and checker.directories[0].name == "lists"
