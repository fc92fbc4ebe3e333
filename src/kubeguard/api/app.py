"""Assemble one service instance: store, detection behind the spool, publishing, and the HTTP app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from kubeguard.api import native, sinks_api
from kubeguard.api import sources as source_routes
from kubeguard.api.console import install_console
from kubeguard.api.context import ServiceContext
from kubeguard.api.detective import build_router as build_detective_router
from kubeguard.api.errors import install_error_handlers
from kubeguard.api.guardduty import build_router
from kubeguard.api.guardduty.custom_rules import restore_modes
from kubeguard.api.ingest import webhook
from kubeguard.api.ingest.backlog import Backlog
from kubeguard.api.ingest.drainer import SpoolDrainer
from kubeguard.api.ingest.group_commit import GroupCommitter
from kubeguard.api.ingest.handoff import DecodedHandoff
from kubeguard.api.intel_sets import IntelSets
from kubeguard.api.metrics import ServiceMetrics
from kubeguard.api.options import ServeOptions
from kubeguard.correlate.stored import correlate_stored
from kubeguard.detectors.rules.catalog import RuleCatalog
from kubeguard.graph.recorder import ActivityRecorder, attach_activity
from kubeguard.graph.retention import Retention
from kubeguard.graph.retention import prune as prune_history
from kubeguard.intel.index import IntelIndex
from kubeguard.intel.locations import LocationPolicy
from kubeguard.sinks.destinations import add_publishing_destinations
from kubeguard.sinks.registry import build_publisher
from kubeguard.store import detectors, ipsets, rule_associations
from kubeguard.store.database import open_engine
from kubeguard.store.detectors import stamp_detector
from kubeguard.store.recorder import FindingRecorder
from kubeguard.store.spool import Spool

log = logging.getLogger(__name__)

def finding_filer(context: ServiceContext) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """File each finding under the current detector; keep none while it is disabled or deleted (as in
    GuardDuty). The events are still detected and their state learned, so nothing waits in the spool."""

    def file(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        detector_id = context.detector_id
        if detector_id is None or not context.detector_enabled:
            return []
        rules = getattr(context, "rules", None)  # a worker's detection settings carry none
        if rules is not None:  # rules associated in DRY_RUN mode count their matches, raise nothing
            found = rules.admit(found)
        return [stamp_detector(finding, detector_id) for finding in found]

    return file


def intel_swapper(pipeline: Any, base: IntelIndex | None) -> Callable[[IntelIndex], None]:
    """Combine the configured intel with the API's sets and swap it into the running detectors."""

    def swap(from_api: IntelIndex) -> None:
        names = {item.name for item in from_api.lists}
        lists = [item for item in (base.lists if base else ()) if item.name not in names]
        combined = IntelIndex([*from_api.lists, *lists], [*from_api.trusted, *(base.trusted if base else ())])
        pipeline.set_intel(combined if combined.lists or combined.trusted else None)
        log.info("threat intelligence reloaded: %r", combined)

    return swap


def rule_catalog(engine: Any, pipeline: Any) -> RuleCatalog:
    """The rules the pipeline evaluates, with the modes their stored associations set."""
    catalog = RuleCatalog.from_detectors(pipeline.engine.detectors)
    with engine.begin() as conn:
        missing = restore_modes(catalog, rule_associations.list_all(conn))
    if missing:
        log.warning("associations name rules that are not loaded: %s", ", ".join(missing))
    return catalog


def history_upkeep(engine: Any, options: ServeOptions, activity: ActivityRecorder) -> Callable[[], None]:
    """Prune the activity store to its retention (age and size); run by the drainer now and then, on the
    thread that flushes ``activity``, which then forgets the first sightings it knew were stored."""
    retention = Retention(days=options.history_days, max_activity_rows=options.history_max_rows)

    def upkeep() -> None:
        with engine.begin() as conn:
            pruned = prune_history(conn, retention)
        if pruned.first_seen:
            activity.forget_stored_pairs()
        if pruned.total:
            log.info("activity store: pruned %d rows past retention", pruned.total)

    return upkeep


def build_context(settings: Any, options: ServeOptions, db_url: str, *, open_access: bool, mutual_tls: bool):
    """Open the store and wire everything; returns the context and the spool drainer (not started)."""
    from kubeguard.batch.processor import BatchProcessor
    from kubeguard.scan import default_pipeline_options

    engine = open_engine(db_url)
    with engine.begin() as conn:
        detector_id = detectors.ensure_default(conn, settings.detector_id or None)
        active_sets = ipsets.active(conn)
    metrics = ServiceMetrics()
    publisher = build_publisher(engine, options.sinks, settings, metrics, options.public_url)
    add_publishing_destinations(engine, publisher, settings, options, metrics)
    recorder = FindingRecorder(
        engine,
        lambda _finding: publisher.wake(),
        lambda kind, outcome: metrics.findings.labels(kind, outcome).inc(),
        correlate=correlate_stored,
        stage=publisher.stage,
    )
    pipeline_options = default_pipeline_options(settings)
    processor = BatchProcessor(engine, settings, recorder, **pipeline_options)
    policy = LocationPolicy.from_settings(
        settings.intel.allowed_locations, settings.intel.allow_private_addresses
    )
    intel = IntelSets(intel_swapper(processor, pipeline_options.get("intel")), policy)
    context = ServiceContext(
        engine=engine,
        settings=settings,
        options=options,
        metrics=metrics,
        spool=Spool(engine),
        recorder=recorder,
        publisher=publisher,
        intel=intel,
        detector_id=detector_id,
        open_access=open_access,
        mutual_tls=mutual_tls,
    )
    intel.load_active(active_sets)
    context.rules = rule_catalog(engine, processor.pipeline)
    processor.file_findings = finding_filer(context)
    activity = attach_activity(processor, pipeline_options.get("describe_ip")) if options.keep_history else None
    drainer = SpoolDrainer(
        context.spool,
        processor,
        metrics,
        retention_seconds=options.spool_retention_seconds,
        retention_bytes=options.spool_retention_bytes,
        maintain=history_upkeep(engine, options, activity) if activity is not None else None,
        handoff=DecodedHandoff(),
    )
    context.handoff = drainer.handoff
    context.wake_drainer = drainer.wake
    context.drainer_alive = drainer.alive
    context.committer = GroupCommitter(context.spool, observe=metrics.spool_commit_batches.observe)
    context.backlog = Backlog(
        context.spool, max_events=options.max_backlog_events, max_bytes=options.max_backlog_bytes
    )
    return context, drainer


def create_app(context: ServiceContext, drainer: SpoolDrainer | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.publisher.start()
        if context.bus is not None:
            await context.bus.start()
        if drainer is not None:
            drainer.start()
        if context.sources is not None:
            context.sources.start()
        try:
            yield
        finally:
            if context.sources is not None:
                context.sources.stop()
            if drainer is not None:
                drainer.stop()
            if context.bus is not None:
                await context.bus.close()
            context.publisher.close()
            context.engine.dispose()

    app = FastAPI(
        title="kubeguard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The route description, for contract tests and clients; it holds no data, so it needs no credential.
        openapi_url="/openapi.json",
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(webhook.router)
    app.include_router(native.router)
    app.include_router(source_routes.router)
    app.include_router(build_router())
    app.include_router(build_detective_router())
    app.include_router(sinks_api.router)
    install_console(app)
    return app
