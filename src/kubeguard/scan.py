"""``kubeguard scan``: run the pipeline over files or stdin and print the findings.

The work is split from the CLI so that tests and the benchmark can call it directly.
"""

from __future__ import annotations

import gc
import itertools
import logging
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
log = logging.getLogger(__name__)


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
    processes (:mod:`kubeguard.split_scan`) when a core is idle, unless ``split`` is False; True splits
    whatever the size and the load.
    """
    reader = EventReader(input_format=input_format, cluster=cluster)
    options = pipeline_options if pipeline_options is not None else default_pipeline_options(settings)
    state = MemoryState.load(state_path) if state_path else MemoryState()
    pipeline = Pipeline(settings, state, **options)
    if split is not False and state_path is None and events is None and history_url is None:
        result = _run_split(paths, pipeline, reader, input_format, progress, progress_every,
                            min_bytes=0 if split else None)
        if result is not None:
            return result
        reader = EventReader(input_format=input_format, cluster=cluster)
        if pipeline.stats.events:  # the split started and failed: start again from nothing
            pipeline = Pipeline(settings, MemoryState(), **options)
    batches = itertools.chain(reader.read_path_batches(paths), (events or (),))
    source: Iterable[AuditEvent] = itertools.chain.from_iterable(batches)
    history = None
    if history_url:
        from kubeguard.graph.history import ScanHistory

        history = ScanHistory(history_url, options.get("describe_ip"))
        source = history.attach(pipeline, source)
    findings = FindingSet()
    started = time.perf_counter()
    count = 0
    process, add = pipeline.process_event, findings.add
    # What exists now (modules, the pipeline, intel, the history store's metadata) lives for the whole scan:
    # frozen, the collector's full passes stop walking it again and again (history cost on 200k simulated
    # events +36% -> +33% CPU); unfrozen after, so a caller's own garbage is collected as before.
    gc.freeze()
    try:
        for event in source:
            found = process(event)
            if found:
                for finding in found:
                    add(finding)
            count += 1
            if progress is not None and count % progress_every == 0:
                progress(count, len(findings))
    finally:
        gc.unfreeze()
    if progress is not None:
        progress(count, len(findings))
    if state_path:
        pipeline.save_state()
        state.save(state_path)
    if history is not None:
        history.finish(findings.values())
    return _result(findings, pipeline, reader, started)


def _run_split(
    paths: Sequence[str],
    pipeline: Pipeline,
    reader: EventReader,
    input_format: str | None,
    progress: ProgressHook | None,
    progress_every: int,
    *,
    min_bytes: int | None,
) -> ScanResult | None:
    """The scan on every core (see :mod:`kubeguard.split_scan`); None when it must run in one process."""
    from kubeguard import split_scan

    plan = split_scan.split_plan(
        list(paths), pipeline, input_format,
        min_bytes=split_scan.MIN_SPLIT_BYTES if min_bytes is None else min_bytes,
        when_busy=min_bytes is not None,  # asked for explicitly: split even on a busy machine
    )
    if plan is None:
        return None
    findings = FindingSet()
    started = time.perf_counter()
    with split_scan.collector_tuned():
        mappers = split_scan.start_mappers(pipeline, {"input_format": input_format, "cluster": reader.cluster}, plan)
        try:
            chunks = split_scan.chunk_results(mappers, plan)
            split_scan.reduce_chunks(pipeline, reader, plan, chunks, findings, progress=progress,
                                     progress_every=progress_every)
        except split_scan.MapperFailed as error:
            split_scan.stop_mappers(mappers, kill=True)
            log.warning("split scan failed (%s); scanning again in one process", error)
            return None
        except BaseException:
            split_scan.stop_mappers(mappers, kill=True)
            raise
    if not split_scan.stop_mappers(mappers, kill=False):
        log.warning("a scan process failed; scanning again in one process")
        return None
    return _result(findings, pipeline, reader, started)


def _result(findings: FindingSet, pipeline: Pipeline, reader: EventReader, started: float) -> ScanResult:
    """What a finished scan reports, whichever way it ran (one process or split)."""
    return ScanResult(
        findings=with_sequences(findings.values()),
        stats=pipeline.stats,
        records=reader.records,
        rejected=reader.rejects.count,
        rejects=list(reader.rejects.kept),
        seconds=time.perf_counter() - started,
        detector_errors=dict(pipeline.engine.errors),
    )
