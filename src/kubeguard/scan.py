"""``kubeguard scan``: run the pipeline over files or stdin and print the findings.

The work is split from the CLI so that tests and the benchmark can call it directly.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeguard.audit.decode import EventReader, Reject
from kubeguard.audit.event import AuditEvent
from kubeguard.config import Settings
from kubeguard.correlate.stage import with_sequences
from kubeguard.detectors.state import MemoryState
from kubeguard.intel.geo import GeoResolver
from kubeguard.intel.index import IntelIndex
from kubeguard.pipeline import FindingSet, Pipeline, PipelineStats


@dataclass(slots=True)
class ScanResult:
    findings: list[dict[str, Any]]
    stats: PipelineStats
    records: int
    rejected: int
    rejects: list[Reject]
    seconds: float
    detector_errors: dict[str, int] = field(default_factory=dict)

    def by_type(self) -> Counter[str]:
        return Counter(f["type"] for f in self.findings)


ProgressHook = Callable[[int, int], None]


def load_intel(settings: Settings) -> IntelIndex | None:
    """The threat intelligence the settings name, or None when they name none and the cache is empty."""
    config = settings.intel
    index = IntelIndex.from_settings(
        threat_lists=config.threat_lists,
        malicious_lists=config.malicious_lists,
        trusted_lists=config.trusted_lists,
        tor_exits=config.tor_exits,
        use_default_feeds=config.use_default_feeds,
        cache_dir=config.cache_dir or None,
    )
    return index if index.lists else None


def default_pipeline_options(settings: Settings) -> dict[str, Any]:
    """Intel and geo enrichment as the settings configure them."""
    resolver = GeoResolver(
        city_mmdb=settings.intel.geo_city_mmdb or None, asn_mmdb=settings.intel.geo_asn_mmdb or None
    )
    return {"intel": load_intel(settings), "describe_ip": resolver.details}


def run_scan(
    paths: Sequence[str],
    settings: Settings,
    *,
    cluster: str | None = None,
    input_format: str | None = None,
    state_path: Path | None = None,
    pipeline_options: dict[str, Any] | None = None,
    progress: ProgressHook | None = None,
    progress_every: int = 5000,
    events: Iterable[AuditEvent] | None = None,
    history_url: str | None = None,
    split: bool | None = None,
) -> ScanResult:
    """Scan ``paths`` ("-" is stdin), then ``events`` (a live source's reader, for ``scan --source``).

    Raises FileNotFoundError / UnknownFormatError before reading. With ``history_url`` the counted events
    and the findings are also kept in that store for the console. A large file is scanned by two
    processes (:mod:`kubeguard.split_scan`) unless ``split`` is False; True splits whatever the size.
    """
    reader = EventReader(input_format=input_format, cluster=cluster)
    options = pipeline_options if pipeline_options is not None else default_pipeline_options(settings)
    if split is not False and state_path is None and events is None and history_url is None:
        from kubeguard import split_scan

        if split_scan.can_split(paths, min_bytes=0 if split else split_scan.MIN_SPLIT_BYTES):
            result = _run_split(paths, settings, reader, options, cluster, input_format, progress, progress_every)
            if result is not None:
                return result
            reader = EventReader(input_format=input_format, cluster=cluster)
    state = MemoryState.load(state_path) if state_path else MemoryState()
    pipeline = Pipeline(settings, state, **options)
    history = None
    if history_url:
        from kubeguard.graph.history import ScanHistory

        history = ScanHistory(history_url, options.get("describe_ip"))
        history.attach(pipeline)
    findings = FindingSet()
    started = time.perf_counter()
    count = 0
    process, add = pipeline.process_event, findings.add
    batches = itertools.chain(reader.read_path_batches(paths), (events or (),))
    for event in itertools.chain.from_iterable(batches):
        found = process(event)
        if found:
            for finding in found:
                add(finding)
        count += 1
        if progress is not None and count % progress_every == 0:
            progress(count, len(findings))
    if progress is not None:
        progress(count, len(findings))
    if state_path:
        pipeline.save_state()
        state.save(state_path)
    if history is not None:
        history.finish(findings.values())
    return ScanResult(
        findings=with_sequences(findings.values()),
        stats=pipeline.stats,
        records=reader.records,
        rejected=reader.rejects.count,
        rejects=list(reader.rejects.kept),
        seconds=time.perf_counter() - started,
        detector_errors=dict(pipeline.engine.errors),
    )


def _run_split(
    paths: Sequence[str],
    settings: Settings,
    reader: EventReader,
    options: dict[str, Any],
    cluster: str | None,
    input_format: str | None,
    progress: ProgressHook | None,
    progress_every: int,
) -> ScanResult | None:
    """The two-process scan (see :mod:`kubeguard.split_scan`); None when it must be run in one."""
    from kubeguard import split_scan
    from kubeguard.detectors.registry import default_detectors
    from kubeguard.detectors.rules import user_rule_detectors

    detectors = options.get("detectors")
    if detectors is None:
        detectors = [*default_detectors(settings.detectors.packs), *user_rule_detectors(settings.rules)]
    halves = split_scan.split_detectors(detectors)
    if halves is None:
        return None
    child_detectors, parent_detectors = halves
    child = Pipeline(settings, MemoryState(), **{**options, "detectors": child_detectors})
    parent = Pipeline(settings, MemoryState(), **{**options, "detectors": parent_detectors})
    child_reader = EventReader(input_format=input_format, cluster=cluster)
    started = time.perf_counter()
    wait = split_scan.fork_half(lambda: split_scan.run_half(child, child_reader, paths))
    try:
        mine = split_scan.run_half(parent, reader, paths, progress=progress, progress_every=progress_every)
    except BaseException:
        wait.abandon()  # type: ignore[attr-defined]
        raise
    theirs = wait()
    merged = split_scan.merge_halves(theirs, mine) if theirs is not None else None
    if merged is None or theirs is None:
        return None
    if progress is not None:
        progress(mine.count, len(merged))
    return ScanResult(
        findings=with_sequences(merged),
        stats=split_scan.merged_stats(theirs, mine),
        records=reader.records,
        rejected=reader.rejects.count,
        rejects=list(reader.rejects.kept),
        seconds=time.perf_counter() - started,
        detector_errors=split_scan.merged_errors(theirs, mine),
    )
