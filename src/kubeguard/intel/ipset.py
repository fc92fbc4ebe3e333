"""An immutable set of IPv4 and IPv6 addresses for fast membership tests.

Threat lists hold up to 250,000 entries (GuardDuty's limit) and every audit event asks about one to a few
addresses, so lookups dominate. Each address family is stored as sorted, merged, non-overlapping integer
intervals ``[start, end]``; a lookup is one ``bisect`` over a list of ints, O(log n) whatever mix of single
addresses, CIDRs and ranges the list was built from. The ``ipaddress`` module is used only while building,
because it is slow per call; lookups parse with ``socket.inet_pton``.

IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``) are looked up as the IPv4 address they carry, so a
dual-stack API server reporting a mapped address cannot slip past an IPv4 list.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["IPSet", "IPSetBuilder", "parse_ip"]

V4 = 4
V6 = 6
_V4_MAX = (1 << 32) - 1
_MAPPED_PREFIX = 0xFFFF << 32  # ::ffff:0:0/96
_MAPPED_LAST = _MAPPED_PREFIX | _V4_MAX

IPKey = tuple[int, int]
"""A parsed address: (family, integer value), family being 4 or 6."""


def parse_ip(text: str) -> IPKey | None:
    """Parse one address into an :data:`IPKey`, or ``None`` if it is not an IP address.

    Never raises: audit logs carry whatever a proxy wrote into ``X-Forwarded-For``. A zone index
    (``fe80::1%eth0``) is ignored, and a mapped IPv6 address becomes its IPv4 address.
    """
    key = _pton(text)
    if key is not None and key[0] == V6 and _MAPPED_PREFIX <= key[1] <= _MAPPED_LAST:
        return V4, key[1] & _V4_MAX
    return key


def _pton(text: str) -> IPKey | None:
    """The address as (family, int) exactly as written, without the mapped-address folding."""
    try:
        if ":" in text:
            return V6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text.partition("%")[0]), "big")
        return V4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, TypeError):
        return None


class IPSet:
    """Immutable set of addresses; build one with :class:`IPSetBuilder` or :meth:`IPSet.of`.

    ``len()`` is the number of entries (addresses, networks, ranges) the set was built from, counted after
    exact duplicates are removed: the number of addresses can exceed ``sys.maxsize`` for IPv6.
    """

    __slots__ = ("_starts", "_ends", "_entries")

    def __init__(
        self,
        intervals: dict[int, list[tuple[int, int]]] | None = None,
        entries: int = 0,
    ) -> None:
        intervals = intervals or {}
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for family in (V4, V6):
            merged = _merge(intervals.get(family, []))
            self._starts[family] = [start for start, _ in merged]
            self._ends[family] = [end for _, end in merged]
        self._entries = entries

    @classmethod
    def of(cls, entries: Iterable[str]) -> IPSet:
        """Build a set from addresses, CIDRs and ranges; raises ``ValueError`` on the first bad entry."""
        builder = IPSetBuilder()
        for entry in entries:
            builder.add(entry)
        return builder.build()

    def contains(self, ip: str) -> bool:
        """True if ``ip`` is in the set; an unparseable string is in no set."""
        key = parse_ip(ip)
        return key is not None and self.contains_key(key)

    def contains_key(self, key: IPKey) -> bool:
        """Membership for an address already parsed by :func:`parse_ip` (one parse, many sets)."""
        family, value = key
        starts = self._starts[family]
        index = bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[family][index]

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, str) and self.contains(ip)

    def __len__(self) -> int:
        return self._entries

    def __bool__(self) -> bool:
        return bool(self._starts[V4] or self._starts[V6])

    @property
    def interval_count(self) -> int:
        """Number of merged intervals actually searched (a measure of lookup depth)."""
        return len(self._starts[V4]) + len(self._starts[V6])

    def intervals(self, family: int) -> Iterator[tuple[int, int]]:
        """The merged ``(start, end)`` intervals of one family, ascending."""
        return zip(self._starts[family], self._ends[family], strict=True)

    def __repr__(self) -> str:
        return f"IPSet(entries={self._entries}, intervals={self.interval_count})"


class IPSetBuilder:
    """Collects entries, then freezes them into an :class:`IPSet`.

    :meth:`add` accepts ``192.0.2.1``, ``192.0.2.0/24``, ``2001:db8::/32`` and ranges ``first-last``. A CIDR
    with host bits set (``192.0.2.1/24``) is accepted as its network, as firewalls and GuardDuty do.
    """

    def __init__(self) -> None:
        self._entries: set[tuple[int, int, int]] = set()

    def add(self, entry: str) -> None:
        """Add one entry; raises ``ValueError`` with a readable reason if it is not an IP, CIDR or range."""
        text = entry.strip()
        if not text:
            raise ValueError("empty entry")
        if "-" in text:
            first, _, last = text.partition("-")
            self.add_range(first.strip(), last.strip())
        elif "/" in text:
            self.add_network(text)
        else:
            family, value = _address_key(text)
            self._entries.add((family, value, value))

    def add_network(self, cidr: str) -> None:
        """Add a CIDR block (host bits ignored); a plain ``addr/prefixlen`` skips the slow ipaddress path."""
        address, _, prefix = cidr.partition("/")
        key = _pton(address.strip())
        prefix = prefix.strip()
        if key is not None and prefix.isdigit() and int(prefix) <= (32 if key[0] == V4 else 128):
            host_bits = (32 if key[0] == V4 else 128) - int(prefix)
            start = key[1] >> host_bits << host_bits
            self._entries.add((key[0], start, start | ((1 << host_bits) - 1)))
            return
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {_short(cidr)}") from exc
        self._entries.add((network.version, int(network.network_address), int(network.broadcast_address)))

    def add_range(self, first: str, last: str) -> None:
        """Add an inclusive range of addresses of one family."""
        (family, low), (other_family, high) = _address_key(first), _address_key(last)
        if family != other_family:
            raise ValueError("range mixes IPv4 and IPv6")
        if low > high:
            raise ValueError("range ends before it starts")
        self._entries.add((family, low, high))

    def __len__(self) -> int:
        return len(self._entries)

    def build(self) -> IPSet:
        """Freeze into an :class:`IPSet`; the builder can keep being used."""
        intervals: dict[int, list[tuple[int, int]]] = {V4: [], V6: []}
        for family, start, end in self._entries:
            intervals[family].append((start, end))
            if family == V6 and start <= _MAPPED_LAST and end >= _MAPPED_PREFIX:
                # Lookups turn mapped addresses into IPv4, so the mapped part must be in the IPv4 table too.
                intervals[V4].append((max(start, _MAPPED_PREFIX) & _V4_MAX, min(end, _MAPPED_LAST) & _V4_MAX))
        return IPSet(intervals, len(self._entries))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge sorted intervals that overlap or touch, so each address lies in at most one interval."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _address_key(text: str) -> IPKey:
    key = _pton(text)
    if key is None:
        raise ValueError(f"not an IP address: {_short(text)}")
    return key


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
