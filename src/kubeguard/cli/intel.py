"""``kubeguard intel``: refresh the open feeds, show what is cached, and ask which lists hold an address."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kubeguard.cli.errors import guarded

if TYPE_CHECKING:
    from kubeguard.intel.feeds import Feed, FeedCache

#: Seconds per network operation (``kubeguard.intel.sources.DEFAULT_TIMEOUT``; a test checks they agree).
DEFAULT_TIMEOUT = 30.0

app = typer.Typer(help="Threat-intelligence lists: open feeds, custom lists, Tor exits, trusted lists.")

CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="Feed cache directory (default: the user cache).")]
FeedsConfig = Annotated[
    Path | None,
    typer.Option("--feeds", help="TOML file of \\[\\[feed]] tables replacing the built-in feed set."),
]


def _cache(cache_dir: Path | None) -> FeedCache:
    from kubeguard.intel.feeds import FeedCache, default_cache_dir

    return FeedCache(cache_dir if cache_dir is not None else default_cache_dir())


def _feeds(config: Path | None) -> tuple[Feed, ...]:
    from kubeguard.intel.feeds import DEFAULT_FEEDS, load_feeds_config

    if config is None:
        return DEFAULT_FEEDS
    try:
        return load_feeds_config(config)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--feeds") from exc


@app.command()
@guarded("intel update")
def update(
    cache_dir: CacheDir = None,
    feeds: FeedsConfig = None,
    timeout: Annotated[float, typer.Option(help="Seconds per network operation.")] = DEFAULT_TIMEOUT,
    force: Annotated[bool, typer.Option(help="Download even if the server says unchanged.")] = False,
) -> None:
    """Download the feeds into the cache (conditional GET); a failed feed keeps its cached copy."""
    from rich.console import Console

    console = Console()
    cache = _cache(cache_dir)
    outcomes = cache.update(_feeds(feeds), timeout=timeout, force=force)
    style = {"updated": "green", "not-modified": "cyan", "failed": "red"}
    for outcome in outcomes:
        console.print(
            f"[{style[outcome.status]}]{outcome.status:>12}[/] {outcome.name} {outcome.detail}",
            highlight=False,
        )
    if any(outcome.status == "failed" for outcome in outcomes):
        raise typer.Exit(1)


@app.command("list")
@guarded("intel list")
def list_feeds(cache_dir: CacheDir = None, feeds: FeedsConfig = None) -> None:
    """Show each feed: kind, entries, size, age and the last error."""
    from rich.console import Console
    from rich.table import Table

    cache = _cache(cache_dir)
    states = {state.name: state for state in cache.states()}
    table = Table(title=f"Feeds in {cache.root}")
    for column in ("name", "kind", "entries", "bytes", "age", "last error"):
        table.add_column(column, no_wrap=column != "last error", overflow="fold")
    now = time.time()
    configured = [feed.name for feed in _feeds(feeds)]
    names = configured + sorted(set(states) - set(configured))
    for name in names:
        state = states.get(name)
        if state is None:
            table.add_row(name, "", "", "", "never fetched", "")
            continue
        age = state.age(now)
        table.add_row(
            name,
            state.kind,
            str(state.entries),
            str(state.size),
            _age(age) if age is not None else "never fetched",
            state.last_error,
        )
    Console(width=max(120, Console().width)).print(table)


@app.command()
@guarded("intel check")
def check(
    ip: Annotated[str, typer.Argument(help="IPv4 or IPv6 address.")],
    cache_dir: CacheDir = None,
    threat_list: Annotated[
        list[str] | None, typer.Option("--threat-list", help="[NAME=]FILE[:FORMAT], repeatable.")
    ] = None,
    trusted_list: Annotated[
        list[str] | None, typer.Option("--trusted-list", help="[NAME=]FILE[:FORMAT], repeatable.")
    ] = None,
    tor_exits: Annotated[list[str] | None, typer.Option("--tor-exits", help="Tor exit list file.")] = None,
    no_default_feeds: Annotated[bool, typer.Option("--no-default-feeds")] = False,
) -> None:
    """Say which lists hold IP, and whether a trusted list holds it (which suppresses caller findings)."""
    from rich.console import Console

    from kubeguard.intel.formats import ListError
    from kubeguard.intel.index import IntelIndex
    from kubeguard.intel.ipset import parse_ip
    from kubeguard.intel.sources import SourceError

    console = Console(highlight=False)
    if parse_ip(ip) is None:
        raise typer.BadParameter(f"{ip!r} is not an IP address", param_hint="IP")
    try:
        index = IntelIndex.from_settings(
            threat_lists=threat_list or [],
            trusted_lists=trusted_list or [],
            tor_exits=tor_exits or [],
            use_default_feeds=not no_default_feeds,
            cache_dir=cache_dir,
        )
    except (SourceError, ListError, ValueError) as exc:
        console.print(f"[red]cannot load lists:[/] {exc}")
        raise typer.Exit(2) from exc
    matches = index.match(ip)
    for match in matches:
        console.print(f"{ip} is on {match.kind} list {match.list_name} (sha256 {match.file_sha256[:12]})")
    trusted = index.trusted_by(ip)
    for name in trusted:
        console.print(f"{ip} is on trusted list {name}: no caller finding will be raised")
    if not matches and not trusted:
        console.print(f"{ip} is on none of {len(index.lists)} threat lists and {len(index.trusted)} trusted lists")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
