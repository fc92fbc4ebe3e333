"""Simulated time: integer microseconds since the epoch, and the few calendar questions actors ask.

Every timestamp inside the simulator is an ``int`` of microseconds. Integers sort, add and compare
without rounding, and turning one into the API server's RFC 3339 form (``2026-01-05T09:12:03.123456Z``)
is the hot path of the whole generator, so :func:`rfc3339` caches the formatted second and only
formats the microseconds per call.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

_cached_second = -1
_cached_prefix = ""


def parse_duration(text: str) -> timedelta:
    """Read ``14d``, ``36h``, ``1d12h``, ``90m`` or ``45s`` (the CLI's spelling of a span)."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 14d, 36h, 1d12h, 90m)")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def parse_start(text: str) -> datetime:
    """Read an ISO date or date-time; a value without a zone is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware (or UTC-naive) datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def span_us(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def rfc3339(us: int) -> str:
    """``2026-01-05T09:12:03.123456Z``: the API server's MicroTime form."""
    global _cached_second, _cached_prefix
    second, micro = divmod(us, SECOND)
    if second != _cached_second:
        _cached_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _cached_second = second
    return f"{_cached_prefix}.{micro:06d}Z"


def rfc3339_seconds(us: int) -> str:
    """``2026-01-05T09:12:03Z``: the form of ``metadata.creationTimestamp``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(us // SECOND))


def local_hour(us: int, utc_offset_hours: int) -> float:
    """Hour of the day (0-24, fractional) on the wall clock of someone at ``utc_offset_hours``."""
    return ((us / HOUR) + utc_offset_hours) % 24


def local_weekday(us: int, utc_offset_hours: int) -> int:
    """Monday is 0. The epoch (1970-01-01) was a Thursday, hence the 3."""
    return (int((us + utc_offset_hours * HOUR) // DAY) + 3) % 7


def local_midnight(us: int, utc_offset_hours: int) -> int:
    """The start of the local day containing ``us``, in UTC microseconds."""
    shift = utc_offset_hours * HOUR
    return (us + shift) // DAY * DAY - shift


#: How far back an actor may date a request behind the latest one it emitted: an actor plays an episode
#: (a kubectl session, a deploy, a backup) as a burst, and episodes overlap by less than this.
SLACK = 2 * HOUR


def in_time_order(stream: Iterable[tuple[int, int, Any]], slack: int = SLACK) -> Iterator[tuple[int, Any]]:
    """Turn ``(request_time, stage_time, event)`` items into ``(stage_time, event)`` in stage order.

    Stages are logged after their request (a watch completes minutes after it opened, an exec when the
    shell exits), and an actor may emit a burst of requests before the next episode that starts earlier.
    As long as no request is dated more than ``slack`` before the latest one seen, a stage dated at or
    before that watermark can never be overtaken and is safe to release.
    """
    pending: list[tuple[int, int, Any]] = []
    latest = -(1 << 62)
    for sequence, (request_time, stage_time, event) in enumerate(stream):
        if request_time > latest:
            latest = request_time
        watermark = latest - slack
        while pending and pending[0][0] <= watermark:
            stamp, _, ready = heapq.heappop(pending)
            yield stamp, ready
        heapq.heappush(pending, (stage_time, sequence, event))
    while pending:
        stamp, _, ready = heapq.heappop(pending)
        yield stamp, ready
