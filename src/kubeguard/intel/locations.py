"""Which list locations a ThreatIntelSet or IPSet may name, for anyone holding an API key.

The API reads whatever location a caller gives it, so without a policy an API key would be a way to make
the server read any local file (``/etc/shadow`` as a "list", ``/dev/kmsg`` to tie up a thread for ever) or
probe internal HTTPS hosts. ``[intel] allowed_locations`` names what may be read: directories (a location
must resolve, links followed, to a regular file inside one) and ``https://`` URL prefixes (whose host must
not resolve to a loopback, private, link-local or otherwise non-public address unless
``[intel] allow_private_addresses`` is true). By default that is the ``lists`` folder of kubeguard's data
directory and any public ``https://`` URL, which is what GuardDuty itself reads (S3 objects).

A refusal says only that the location is not allowed: whether a file exists outside the allowed roots, or
what an internal host answers, is not the caller's to learn.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kubeguard.intel.sources import SourceError, file_url_path

#: The default https prefix: any public host.
ANY_HTTPS = "https://"

Resolver = Callable[[str], list[str]]


class LocationRefused(Exception):
    """The location is outside ``[intel] allowed_locations``; the message reveals nothing about it."""


def default_allowed_locations() -> list[str]:
    import platformdirs

    return [str(Path(platformdirs.user_data_dir("kubeguard")) / "lists"), ANY_HTTPS]


def _resolve_host(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class LocationPolicy:
    directories: tuple[Path, ...]
    url_prefixes: tuple[str, ...]
    allow_private_addresses: bool = False
    resolve: Resolver = _resolve_host

    @classmethod
    def from_settings(cls, allowed: Sequence[str], allow_private_addresses: bool = False) -> LocationPolicy:
        entries = list(allowed) or default_allowed_locations()
        prefixes = tuple(entry for entry in entries if entry.lower().startswith("https://"))
        directories = tuple(
            Path(entry).expanduser().resolve() for entry in entries if "://" not in entry and entry.strip()
        )
        return cls(directories, prefixes, allow_private_addresses)

    def check(self, location: str) -> None:
        """Raise :class:`LocationRefused` unless ``location`` may be read."""
        parts = urlsplit(location)
        scheme = parts.scheme.lower()
        if scheme == "https":
            self._check_url(location, parts.hostname or "")
        elif scheme == "file":
            try:
                path = file_url_path(location)
            except SourceError:
                raise LocationRefused("file:// locations must be local") from None
            self._check_file(path)
        elif len(scheme) > 1:
            raise LocationRefused("only file paths, file:// and https:// locations are allowed")
        else:
            self._check_file(Path(location))

    def _check_file(self, path: Path) -> None:
        refused = LocationRefused(
            "location is not a regular file inside a directory of [intel] allowed_locations"
        )
        try:
            real = Path(os.path.realpath(path.expanduser()))
        except (OSError, ValueError):
            raise refused from None
        if not any(real.is_relative_to(root) for root in self.directories):
            raise refused
        try:
            mode = real.stat().st_mode
        except OSError:
            return  # inside an allowed directory: the reader reports the missing file itself
        if not stat.S_ISREG(mode):
            raise refused

    def _check_url(self, url: str, host: str) -> None:
        if not any(url.startswith(prefix) for prefix in self.url_prefixes):
            raise LocationRefused("location is not under an https:// prefix of [intel] allowed_locations")
        if self.allow_private_addresses:
            return
        addresses = self.resolve(host)
        if not addresses or not all(_is_public(address) for address in addresses):
            raise LocationRefused(
                "location's host is not a public address (set [intel] allow_private_addresses to allow it)"
            )


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast
