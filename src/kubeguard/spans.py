"""Counted spans: how often something was seen, and when first and last.

A span is a list ``[count, first, last]`` whose times are ISO 8601 strings (they sort as the times do).
The anomaly learner's pending tables and the activity recorder's groups both sum sightings into spans.
"""

from __future__ import annotations

from typing import Any


def fold_span(spans: dict[Any, list[Any]], key: Any, count: int, first: str, last: str) -> bool:
    """Add ``count`` sightings between ``first`` and ``last`` to ``spans[key]``; True when the key is new."""
    span = spans.get(key)
    if span is None:
        spans[key] = [count, first, last]
        return True
    span[0] += count
    if first < span[1]:
        span[1] = first
    if last > span[2]:
        span[2] = last
    return False
