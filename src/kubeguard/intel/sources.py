"""Where lists come from: a plain path, a ``file://`` URL or an ``http(s)://`` URL, read with bounds.

Every read stops at a byte cap (GuardDuty's 35 MB by default) while streaming, so a hostile or broken server
cannot fill memory, and HTTP reads have both a per-operation timeout and an overall deadline, so a server
that drips one byte at a time cannot hang a scan.

The CLI names lists as ``[NAME=]LOCATION[:FORMAT]`` (``--threat-list corp=lists/bad.txt:TXT``);
:func:`parse_list_spec` reads that form.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from kubeguard.intel.formats import FORMATS, MAX_FILE_BYTES, ParsedList, parse_list

if TYPE_CHECKING:  # httpx costs a tenth of a second to import; only HTTP lists need it
    import httpx

__all__ = [
    "DEFAULT_TIMEOUT",
    "FetchResult",
    "ListSpec",
    "LoadedList",
    "SourceError",
    "fetch",
    "load_list",
    "parse_list_spec",
    "read_location",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds for each network operation; the whole download gets four times this."""
_CHUNK = 64 * 1024


class SourceError(Exception):
    """A list could not be read: missing file, unreachable server, HTTP error, or over the size cap."""


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A list to load: where it is, its format (``None``: detect it) and the name findings will carry."""

    location: str
    format: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", default_list_name(self.location))


def parse_list_spec(spec: str) -> ListSpec:
    """Read ``[NAME=]LOCATION[:FORMAT]``.

    A ``:FORMAT`` suffix counts only if it names a known format, so ``https://host:8443/list`` and paths
    containing colons stay intact. ``NAME=`` counts only if NAME has no ``/``, ``:`` or
    ``\\``, so ``./a=b.txt`` is a path.
    """
    text = spec.strip()
    if not text:
        raise ValueError("empty list spec")
    name = ""
    head, equals, rest = text.partition("=")
    if equals and head and rest and not any(char in head for char in "/:\\"):
        name, text = head.strip(), rest.strip()
    location, colon, fmt = text.rpartition(":")
    if colon and location and fmt.upper() in FORMATS:
        return ListSpec(location, fmt.upper(), name)
    if colon and location and _looks_like_format(fmt) and "://" not in text:
        raise ValueError(f"unknown list format {fmt!r} in {spec!r}; use one of {', '.join(FORMATS)}")
    return ListSpec(text, None, name)


def _looks_like_format(word: str) -> bool:
    """A ``:SUFFIX`` meant as a format name: letters and ``_`` (a port or path part has digits or ``/``)."""
    return len(word) > 1 and word.isascii() and word.replace("_", "").isalpha()


def default_list_name(location: str) -> str:
    """The file name without its extension (``lists/bad-ips.txt`` -> ``bad-ips``), else the host."""
    parts = urlsplit(location)
    path = unquote(parts.path) if len(parts.scheme) > 1 else location
    stem = PurePosixPath(path.replace("\\", "/")).stem
    return stem or parts.hostname or location


@dataclass(frozen=True, slots=True)
class LoadedList:
    """A parsed list with its provenance: GuardDuty reports the SHA-256 of the list file."""

    name: str
    location: str
    sha256: str
    parsed: ParsedList = field(repr=False)


def load_list(
    spec: ListSpec | str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> LoadedList:
    """Read and parse one list; raises :class:`SourceError` or :class:`~kubeguard.intel.formats.ListError`."""
    if isinstance(spec, str):
        spec = parse_list_spec(spec)
    data = read_location(spec.location, max_bytes=max_bytes, timeout=timeout)
    parsed = parse_list(data, spec.format, source=spec.name, max_bytes=max_bytes)
    return LoadedList(spec.name, spec.location, hashlib.sha256(data).hexdigest(), parsed)


def read_location(location: str, *, max_bytes: int = MAX_FILE_BYTES, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The bytes at a path, ``file://`` or ``http(s)://`` URL, at most ``max_bytes`` of them."""
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        import httpx

        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            result = fetch(client, location, max_bytes=max_bytes, timeout=timeout)
        if result.status != 200:
            raise SourceError(f"{location}: HTTP {result.status}")
        return result.body
    if scheme == "file":
        return _read_file(file_url_path(location), max_bytes)
    if len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise SourceError(f"{location}: unsupported scheme {scheme!r} (use a path, file://, http:// or https://)")
    return _read_file(Path(location), max_bytes)


def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL; :class:`SourceError` for another host."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"{url}: file:// URLs must be local")
    return Path(unquote(parts.path))


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SourceError(f"{path}: larger than the {max_bytes}-byte limit")
    return data


@dataclass(frozen=True, slots=True)
class FetchResult:
    """An HTTP response read within bounds; ``body`` is empty unless ``status`` is 200."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


def fetch(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    headers: dict[str, str] | None = None,
) -> FetchResult:
    """GET ``url`` streaming, refusing bodies over ``max_bytes`` and downloads longer than 4 x ``timeout``.

    ``headers`` carries ``If-None-Match``/``If-Modified-Since`` for a conditional GET; a 304 comes back as
    ``FetchResult(304)``. Any other non-200 status is returned too, for the caller to report.
    """
    import httpx

    deadline = time.monotonic() + 4 * timeout
    try:
        with client.stream("GET", url, headers=headers or {}, timeout=timeout) as response:
            if urlsplit(url).scheme.lower() == "https" and response.url.scheme != "https":
                # A redirect off TLS: whoever is on the path could write the list (or a trusted list).
                raise SourceError(f"{url}: redirected to {response.url.scheme}://, refusing to leave https")
            if response.status_code != 200:
                return FetchResult(response.status_code)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(f"{url}: {declared} bytes declared, over the {max_bytes}-byte limit")
            body = bytearray()
            for chunk in response.iter_bytes(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise SourceError(f"{url}: larger than the {max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: download took longer than {4 * timeout:.0f}s")
            return FetchResult(200, bytes(body), response.headers.get("etag"), response.headers.get("last-modified"))
    except httpx.TimeoutException as exc:
        raise SourceError(f"{url}: timed out after {timeout:.0f}s") from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {exc}") from exc
