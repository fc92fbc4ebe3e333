"""``kubeguard scan`` on two cores: the detector list split in two, one half per process, findings merged.

The pipeline's per-event work is sequential by nature (de-duplication, trackers, the anomaly baselines
all depend on the events before), so the events cannot be dealt out to workers without changing what
is found. The *detectors* can be: the anomaly family (its learner and the eight detectors that read its
baselines) shares no state with the signature and caller detectors before it in the registry, except
what the trackers record (which roles grant ``*`` on ``*``). So a scan of a large file forks once:

* the child reads and decodes the whole file and runs the detectors *before* the anomaly family;
* the parent reads and decodes the whole file too and runs the trackers, then the anomaly family and
  everything registered after it (user rules).

Both read the same bytes with the same reader, so they see the same events in the same order, count the
same stages and take the same de-duplication decisions. Each aggregates its own findings by id; the two
halves raise different finding types, so their ids never meet, and merging the two sets by the event
that first raised each id (the child's detectors come first within an event) gives the order a single
process prints. Whenever that reasoning could fail — an id on both sides, a finding that could not be
built on one side only, a child that died — the scan is run again in one process, so the answer is
always the sequential one.

Stdin, small inputs, ``--state``, ``--db`` and live sources run in one process (:func:`can_split`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeguard.audit.decode import EventReader, expand_path
from kubeguard.detectors.base import Detector
from kubeguard.pipeline import FindingSet, Pipeline, PipelineStats

log = logging.getLogger(__name__)

#: Below this many input bytes a second process costs more than it saves.
MIN_SPLIT_BYTES = 16 * 1024 * 1024
#: ``KUBEGUARD_SCAN_PROCESSES=1`` keeps every scan in one process (a debugging switch).
PROCESSES_ENV = "KUBEGUARD_SCAN_PROCESSES"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_split(paths: Sequence[str], *, min_bytes: int = MIN_SPLIT_BYTES) -> bool:
    """True when ``paths`` are files worth two processes and this platform can fork.

    The caller rules out the modes that must stay in one process (state, history, live sources).
    """
    if not hasattr(os, "fork") or os.environ.get(PROCESSES_ENV) == "1" or usable_cores() < 2:
        return False
    total = 0
    try:
        for path in paths:
            if path == "-":
                return False
            for file in expand_path(Path(path)):
                total += file.stat().st_size
    except OSError:  # a missing path: the one-process scan raises the error the user expects
        return False
    return total >= min_bytes


def _is_anomaly(detector: Detector) -> bool:
    return type(detector).__module__.startswith("kubeguard.detectors.anomaly.")


def split_detectors(detectors: Sequence[Detector]) -> tuple[list[Detector], list[Detector]] | None:
    """(child's detectors, parent's detectors), or None when the list has no two halves to split.

    The parent takes the anomaly family and everything registered after it, plus every detector that
    raises no finding (the trackers), whose facts the anomaly detectors read; the child takes the rest.
    Within an event, the child's detections come before the parent's, as in the one-process order.
    """
    first = next((i for i, d in enumerate(detectors) if _is_anomaly(d)), None)
    if first is None:
        return None
    head, tail = list(detectors[:first]), list(detectors[first:])
    if not any(d.finding_types for d in head):
        return None
    return head, [d for d in head if not d.finding_types] + tail


@dataclass
class HalfResult:
    """What one process found: its findings by id, with the event that first raised each."""

    findings: dict[str, dict[str, Any]]
    first_event: dict[str, int]
    stats: PipelineStats
    errors: dict[str, int]
    #: The events where the pipeline counted a reject (unreadable time, unbuildable finding), digested.
    reject_digest: bytes
    count: int
    later_findings: list[str] = field(default_factory=list)


def run_half(
    pipeline: Pipeline,
    reader: EventReader,
    paths: Sequence[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = 5000,
) -> HalfResult:
    """Run ``pipeline`` over every event of ``paths``, aggregating its findings as ``scan`` does."""
    findings = FindingSet()
    by_id = findings.by_id
    first_event: dict[str, int] = {}
    stats = pipeline.stats
    digest = hashlib.blake2b(digest_size=16)
    rejected = stats.rejected
    process, add = pipeline.process_event, findings.add
    index = 0
    for index, event in enumerate(itertools.chain.from_iterable(reader.read_path_batches(paths)), 1):
        found = process(event)
        if found:
            for finding in found:
                if finding["id"] not in by_id:
                    first_event[finding["id"]] = index
                add(finding)
        elif stats.rejected != rejected:
            rejected = stats.rejected
            digest.update(index.to_bytes(8, "little"))
        if progress is not None and index % progress_every == 0:
            progress(index, len(by_id))
    return HalfResult(
        findings=by_id,
        first_event=first_event,
        stats=stats,
        errors=dict(pipeline.engine.errors),
        reject_digest=digest.digest(),
        count=index,
    )


def merge_halves(child: HalfResult, parent: HalfResult) -> list[dict[str, Any]] | None:
    """The findings in one-process order, or None when the halves cannot be merged exactly."""
    if child.findings.keys() & parent.findings.keys():
        return None  # a type both halves raise: their aggregation would have interleaved
    if child.reject_digest != parent.reject_digest or child.count != parent.count:
        return None  # a finding failed to build on one side only: the whole event must be dropped
    ordered = [(child.first_event[i], 0, n, f) for n, (i, f) in enumerate(child.findings.items())]
    ordered += [(parent.first_event[i], 1, n, f) for n, (i, f) in enumerate(parent.findings.items())]
    ordered.sort(key=lambda item: item[:3])
    return [finding for *_, finding in ordered]


def merged_stats(child: HalfResult, parent: HalfResult) -> PipelineStats:
    stats = PipelineStats(**{name: getattr(parent.stats, name) for name in PipelineStats.__slots__})
    stats.detections = child.stats.detections + parent.stats.detections
    return stats


def merged_errors(child: HalfResult, parent: HalfResult) -> dict[str, int]:
    errors = dict(child.errors)
    for name, count in parent.errors.items():
        errors[name] = errors.get(name, 0) + count
    return errors


def fork_half(work: Callable[[], HalfResult]) -> Callable[[], HalfResult | None]:
    """Start ``work`` in a forked child; the returned call waits for its result (None if it failed).

    The child inherits everything built so far (settings, intel, rules) instead of rebuilding it, logs
    only errors (the parent reports rejects once), and leaves with ``os._exit`` so that nothing of the
    parent's (buffers, atexit hooks) runs twice.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected; its result is tested
        status = 1
        try:
            os.close(read_end)
            logging.disable(logging.WARNING)
            payload = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            status = 0
        except BaseException:  # noqa: BLE001 - any failure: the parent sees no result and scans alone
            pass
        finally:
            os._exit(status)
    os.close(write_end)

    def wait() -> HalfResult | None:
        with os.fdopen(read_end, "rb") as stream:
            payload = stream.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not payload:
            log.warning("the second scan process failed (status %s); scanning again in one process", status)
            return None
        return pickle.loads(payload)  # noqa: S301 - our own child's output, through our own pipe

    def abandon() -> None:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
        os.close(read_end)

    wait.abandon = abandon  # type: ignore[attr-defined]
    return wait
