"""Open malicious-IP feeds, downloaded into a local cache so scans and the service work offline.

GuardDuty's own MaliciousIPCaller list is proprietary; kubeguard substitutes well-known public blocklists
chosen by the operator. ``kubeguard intel update`` refreshes them with conditional GETs (ETag and
Last-Modified), writes each atomically next to a JSON sidecar with its timestamps, and keeps the cached
copy whenever a download fails or does not parse, so a feed outage or an HTML error page never empties a
list that detection relies on. Detection itself only ever reads the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kubeguard.intel.formats import FORMATS, MAX_FILE_BYTES, ListError, parse_list
from kubeguard.intel.sources import DEFAULT_TIMEOUT, LoadedList, SourceError, fetch

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_FEEDS",
    "Feed",
    "FeedCache",
    "FeedState",
    "UpdateOutcome",
    "default_cache_dir",
    "load_feeds_config",
]

log = logging.getLogger(__name__)

FEED_KINDS = ("malicious", "tor")
STALE_AFTER = 7 * 24 * 3600.0
"""A cached feed older than this still loads, with a warning: an old list beats no list."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class Feed:
    """One downloadable list; ``name`` becomes the finding's ``threatListName``."""

    name: str
    url: str
    format: str = "TXT"
    kind: str = "malicious"
    threat_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"feed name {self.name!r}: use letters, digits, '.', '_' and '-' only")
        if self.format.upper() not in FORMATS:
            raise ValueError(f"feed {self.name}: unknown format {self.format!r}")
        if self.kind not in FEED_KINDS:
            raise ValueError(f"feed {self.name}: kind must be one of {', '.join(FEED_KINDS)}")
        object.__setattr__(self, "format", self.format.upper())
        object.__setattr__(self, "threat_names", tuple(self.threat_names))


FIREHOL_LEVEL1_URL = "https://raw.githubusercontent.com/firehol/blocklist-ipsets/master/firehol_level1.netset"
SPAMHAUS_DROP_URL = "https://www.spamhaus.org/drop/drop.txt"
SPAMHAUS_DROPV6_URL = "https://www.spamhaus.org/drop/dropv6.txt"
SPAMHAUS_EDROP_URL = "https://www.spamhaus.org/drop/edrop.txt"
FEODO_IPBLOCKLIST_URL = "https://feodotracker.abuse.ch/downloads/ipblocklist.txt"
TOR_BULK_EXIT_LIST_URL = "https://check.torproject.org/torbulkexitlist"

DEFAULT_FEEDS: tuple[Feed, ...] = (
    Feed("firehol-level1", FIREHOL_LEVEL1_URL, threat_names=("FireHOL level1",)),
    Feed("spamhaus-drop", SPAMHAUS_DROP_URL, threat_names=("Spamhaus DROP",)),
    Feed("spamhaus-dropv6", SPAMHAUS_DROPV6_URL, threat_names=("Spamhaus DROPv6",)),
    Feed("spamhaus-edrop", SPAMHAUS_EDROP_URL, threat_names=("Spamhaus EDROP",)),
    Feed("feodo-ipblocklist", FEODO_IPBLOCKLIST_URL, threat_names=("Feodo Tracker botnet C2",)),
    Feed("tor-exits", TOR_BULK_EXIT_LIST_URL, "TOR_BULK", "tor", ("Tor exit node",)),
)


def load_feeds_config(path: Path) -> tuple[Feed, ...]:
    """Feeds from a TOML file of ``[[feed]]`` tables (name, url, and optional format, kind, threat_names).

    ``include_defaults = true`` at the top level keeps :data:`DEFAULT_FEEDS` and adds or overrides by name.
    """
    with path.open("rb") as handle:
        config = tomllib.load(handle)
    feeds: dict[str, Feed] = {}
    if config.get("include_defaults", False):
        feeds.update((feed.name, feed) for feed in DEFAULT_FEEDS)
    for table in config.get("feed", []):
        try:
            feed = Feed(
                name=str(table["name"]),
                url=str(table["url"]),
                format=str(table.get("format", "TXT")),
                kind=str(table.get("kind", "malicious")),
                threat_names=tuple(str(name) for name in table.get("threat_names", ())),
            )
        except KeyError as exc:
            raise ValueError(f"{path}: a [[feed]] needs {exc.args[0]!r}") from exc
        feeds[feed.name] = feed
    return tuple(feeds.values())


def default_cache_dir() -> Path:
    """The per-user cache (``~/.cache/kubeguard/feeds`` on Linux); platformdirs is imported only here."""
    from platformdirs import user_cache_path

    return user_cache_path("kubeguard") / "feeds"


@dataclass(slots=True)
class FeedState:
    """The JSON sidecar of a cached feed: what it is and when it was fetched and checked."""

    name: str
    url: str
    format: str
    kind: str
    threat_names: tuple[str, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: float | None = None
    checked_at: float | None = None
    sha256: str = ""
    size: int = 0
    entries: int = 0
    last_error: str = ""

    @classmethod
    def for_feed(cls, feed: Feed) -> FeedState:
        return cls(feed.name, feed.url, feed.format, feed.kind, feed.threat_names)

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the content last changed on our side, or None if never fetched."""
        return None if self.fetched_at is None else (now or time.time()) - self.fetched_at


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """What ``update`` did for one feed: ``updated``, ``not-modified`` or ``failed`` (cache kept)."""

    name: str
    status: str
    detail: str = ""


@dataclass(slots=True)
class FeedCache:
    """A directory of ``<name>.list`` files and ``<name>.json`` sidecars."""

    root: Path = field(default_factory=default_cache_dir)

    def data_path(self, name: str) -> Path:
        return self.root / f"{name}.list"

    def state(self, name: str) -> FeedState | None:
        """The sidecar of a cached feed, or None when the feed has never been downloaded."""
        try:
            raw = json.loads((self.root / f"{name}.json").read_text(encoding="utf-8"))
            raw["threat_names"] = tuple(raw.get("threat_names", ()))
            return FeedState(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def states(self) -> list[FeedState]:
        """Every cached feed, by name."""
        if not self.root.is_dir():
            return []
        names = sorted(path.stem for path in self.root.glob("*.json"))
        return [state for name in names if (state := self.state(name)) is not None]

    def update(
        self,
        feeds: Iterable[Feed] = DEFAULT_FEEDS,
        *,
        client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = MAX_FILE_BYTES,
        force: bool = False,
    ) -> list[UpdateOutcome]:
        """Refresh each feed; one feed failing never stops the others nor loses its cached copy."""
        self.root.mkdir(parents=True, exist_ok=True)
        own_client = client is None
        import httpx

        client = client or httpx.Client(
            timeout=timeout, follow_redirects=True, headers={"User-Agent": "kubeguard-intel"}
        )
        try:
            return [self._update_one(client, feed, timeout, max_bytes, force) for feed in feeds]
        finally:
            if own_client:
                client.close()

    def _update_one(
        self, client: httpx.Client, feed: Feed, timeout: float, max_bytes: int, force: bool
    ) -> UpdateOutcome:
        cached = self.state(feed.name)
        have_data = cached is not None and self.data_path(feed.name).is_file()
        state = FeedState.for_feed(feed)
        if cached is not None and cached.url == feed.url:
            state = replace(cached, format=feed.format, kind=feed.kind, threat_names=feed.threat_names)
        headers = {}
        if have_data and not force and state.url == feed.url:
            if state.etag:
                headers["If-None-Match"] = state.etag
            if state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
        state.checked_at = time.time()
        try:
            result = fetch(client, feed.url, max_bytes=max_bytes, timeout=timeout, headers=headers)
            if result.status == 304 and have_data:
                state.last_error = ""
                self._write_state(state)
                return UpdateOutcome(feed.name, "not-modified")
            if result.status != 200:
                raise SourceError(f"{feed.url}: HTTP {result.status}")
            parsed = parse_list(result.body, feed.format, source=feed.name, max_bytes=max_bytes)
            if len(parsed.ipset) == 0 and parsed.problem_count:
                raise ListError(f"no valid entries and {parsed.problem_count} problems; not a {feed.format} list")
        except (SourceError, ListError) as exc:
            state.last_error = str(exc)
            log.warning("feed %s: %s; %s", feed.name, exc, "keeping the cached copy" if have_data else "no copy")
            self._write_state(state)
            return UpdateOutcome(feed.name, "failed", str(exc))
        _atomic_write(self.data_path(feed.name), result.body)
        state.etag, state.last_modified = result.etag, result.last_modified
        state.fetched_at, state.last_error = state.checked_at, ""
        state.sha256, state.size = hashlib.sha256(result.body).hexdigest(), len(result.body)
        state.entries = len(parsed.ipset)
        self._write_state(state)
        return UpdateOutcome(feed.name, "updated", f"{state.entries} entries")

    def _write_state(self, state: FeedState) -> None:
        payload = asdict(state)
        payload["threat_names"] = list(state.threat_names)
        _atomic_write(self.root / f"{state.name}.json", json.dumps(payload, indent=2).encode())

    def load(
        self, kinds: Sequence[str] = FEED_KINDS, *, max_bytes: int = MAX_FILE_BYTES
    ) -> list[tuple[FeedState, LoadedList]]:
        """Parse every cached feed of the given kinds; a broken cache file is logged and skipped."""
        loaded = []
        now = time.time()
        for state in self.states():
            if state.kind not in kinds or state.fetched_at is None:
                continue
            path = self.data_path(state.name)
            try:
                data = path.read_bytes()
                parsed = parse_list(data, state.format, source=state.name, max_bytes=max_bytes)
            except (OSError, ListError) as exc:
                log.warning("cached feed %s unusable: %s", state.name, exc)
                continue
            age = state.age(now)
            if age is not None and age > STALE_AFTER:
                log.warning("cached feed %s is %.0f days old; run `kubeguard intel update`", state.name, age / 86400)
            loaded.append((state, LoadedList(state.name, str(path), hashlib.sha256(data).hexdigest(), parsed)))
        return loaded


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
