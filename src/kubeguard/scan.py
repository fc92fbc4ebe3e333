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
) -> ScanResult:
    """Scan ``paths`` ("-" is stdin), then ``events`` (a live source's reader, for ``scan --source``).

    Raises FileNotFoundError / UnknownFormatError before reading. With ``history_url`` the counted events
    and the findings are also kept in that store for the console.
    """
    reader = EventReader(input_format=input_format, cluster=cluster)
    state = MemoryState.load(state_path) if state_path else MemoryState()
    options = pipeline_options if pipeline_options is not None else default_pipeline_options(settings)
    pipeline = Pipeline(settings, state, **options)
    source: Iterable[AuditEvent] = itertools.chain(reader.read_paths(paths), events or ())
    history = None
    if history_url:
        from kubeguard.graph.history import ScanHistory

        history = ScanHistory(history_url, options.get("describe_ip"))
        source = history.attach(pipeline, source)
    findings = FindingSet()
    started = time.perf_counter()
    count = 0
    process, add = pipeline.process_event, findings.add
    for event in source:
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
