"""Build and run one ``kubeguard worker`` (options in :mod:`kubeguard.cli.worker`).

Start as many as the load needs, on any machines that reach NATS and PostgreSQL; they share the partitions
between them and hand them over when one stops or dies. SIGTERM or Ctrl-C finishes the current batch,
releases the partitions and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """The worker cannot start; ``usage`` when the options are wrong, else a service is unreachable."""

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


def run_worker(
    bus: str,
    db: str,
    config: Path | None = None,
    *,
    partitions: int = 16,
    ack_wait: float = 30.0,
    replicas: int = 1,
    max_attempts: int = 5,
    metrics_port: int | None = None,
) -> None:
    from prometheus_client import start_http_server

    from kubeguard.api.app import finding_filer
    from kubeguard.api.metrics import ServiceMetrics
    from kubeguard.api.options import serve_options
    from kubeguard.batch.processor import BatchProcessor
    from kubeguard.bus.connection import BusConfigError, BusUnreachable, check_bus_options
    from kubeguard.bus.layout import BusLayoutError, BusSettings
    from kubeguard.bus.processing import BusBatchProcessor
    from kubeguard.bus.settings_watch import DetectionSettings
    from kubeguard.bus.worker import Worker, WorkerMetrics, WorkerOptions
    from kubeguard.collector import tune_for_service
    from kubeguard.config import ConfigError, load_settings
    from kubeguard.correlate.stored import correlate_stored
    from kubeguard.graph.recorder import attach_activity
    from kubeguard.intel.locations import LocationPolicy
    from kubeguard.scan import default_pipeline_options
    from kubeguard.sinks.registry import build_publisher
    from kubeguard.store import detectors
    from kubeguard.store.database import open_engine, url_from_option
    from kubeguard.store.recorder import FindingRecorder

    db_url = url_from_option(db)
    try:
        check_bus_options(bus, db_url)
        settings = load_settings(config)
        options = serve_options(settings.serve)
    except (BusConfigError, ConfigError, ValueError) as exc:
        raise WorkerError(str(exc)) from exc
    if max_attempts < 1:
        raise WorkerError("--max-attempts must be at least 1")
    engine = open_engine(db_url)
    with engine.begin() as conn:
        detectors.ensure_default(conn, settings.detector_id or None)
    metrics = ServiceMetrics()
    worker_metrics = WorkerMetrics(metrics.registry)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    # The same wiring as serve's (kubeguard.api.app.build_context): findings, attack sequences, the sinks'
    # outbox and the activity store all commit in the batch's transaction.
    publisher = build_publisher(engine, options.sinks, settings, metrics, options.public_url)
    recorder = FindingRecorder(
        engine,
        lambda _finding: publisher.wake(),
        lambda kind, outcome: metrics.findings.labels(kind, outcome).inc(),
        correlate=correlate_stored,
        stage=publisher.stage,
    )
    pipeline_options = default_pipeline_options(settings)
    processor = BatchProcessor(engine, settings, recorder, **pipeline_options)
    if options.keep_history:
        attach_activity(processor, pipeline_options.get("describe_ip"))
    policy = LocationPolicy.from_settings(settings.intel.allowed_locations, settings.intel.allow_private_addresses)
    detection = DetectionSettings(pipeline_options.get("intel"), processor.set_intel, policy)
    processor.file_findings = finding_filer(detection)
    worker = Worker(
        bus,
        engine,
        BusBatchProcessor(engine, processor, detection),
        worker_metrics,
        bus_settings=BusSettings(
            partitions=partitions,
            ack_wait_seconds=ack_wait,
            max_bytes=options.max_backlog_bytes,
            replicas=replicas,
        ),
        options=WorkerOptions(max_attempts=max_attempts),
    )
    publisher.start()
    tune_for_service()
    try:
        asyncio.run(_until_signalled(worker))
    except BusUnreachable as exc:
        raise WorkerError(str(exc), usage=False) from exc
    except (BusConfigError, BusLayoutError) as exc:
        raise WorkerError(str(exc)) from exc
    finally:
        publisher.close()
        engine.dispose()


async def _until_signalled(worker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)
