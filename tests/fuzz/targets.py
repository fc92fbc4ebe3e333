"""Fuzz targets: every decoder, envelope and threat-list parser, and the detectors behind them.

Each target takes bytes and must either succeed or fail with the error its module documents (a counted
reject, a :class:`ListError`, a :class:`CriteriaError`, a ``BadRequest``); anything else is a bug. Run one
with ``python tests/fuzz/run.py TARGET`` (libFuzzer flags follow, e.g. ``-max_total_time=600``);
``tests/fuzz/test_fuzz.py`` runs each for a bounded number of inputs in the suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import orjson

from kubeguard.api.errors import ApiError
from kubeguard.api.ingest.webhook import _inflate
from kubeguard.audit.decode import decode_bytes
from kubeguard.config import Settings
from kubeguard.detectors.state import MemoryState
from kubeguard.findings.criteria import CriteriaError, matches, validate
from kubeguard.intel.formats import FORMATS, ListError, parse_list
from kubeguard.pipeline import Pipeline

_SETTINGS = Settings()


def _decode(input_format: str | None) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        result = decode_bytes(data, source="fuzz", input_format=input_format)
        for event in result.events:
            assert event.cluster is not None

    return target


def threat_list(data: bytes) -> None:
    """The first byte picks the format (or detection), the rest is the file."""
    if not data:
        return
    choice = data[0] % (len(FORMATS) + 1)
    fmt = None if choice == len(FORMATS) else FORMATS[choice]
    with contextlib.suppress(ListError):
        parse_list(data[1:], fmt, source="fuzz", max_bytes=1 << 20)


def gzip_body(data: bytes) -> None:
    try:
        inflated = _inflate(data, 1 << 20)
    except ApiError:
        return
    assert len(inflated) <= 1 << 20


def criteria(data: bytes) -> None:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    try:
        criterion = validate(document, allow_wildcards=True)
    except CriteriaError:
        return
    matches(criterion, {"type": "x", "severity": 5, "service": {"archived": False, "count": 1}})


def pipeline(data: bytes) -> None:
    """Hostile events through every detector: none may fail (the engine counts a failure per detector)."""
    events = decode_bytes(data, source="fuzz").events
    if not events:
        return
    running = Pipeline(_SETTINGS, MemoryState())
    running.process(events)
    assert not running.engine.errors, dict(running.engine.errors)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "auto": _decode(None),
    "native": _decode("native"),
    "cloudwatch": _decode("cloudwatch"),
    "gke": _decode("gke"),
    "aks": _decode("aks"),
    "threat-list": threat_list,
    "gzip-body": gzip_body,
    "criteria": criteria,
    "pipeline": pipeline,
}
