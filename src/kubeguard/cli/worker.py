"""``kubeguard worker --bus nats://... --db postgresql+psycopg://...``: the options; :mod:`kubeguard.bus.run`
builds and runs the worker."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kubeguard.cli.errors import CliError, UsageError, guarded


@guarded("worker")
def worker_command(
    bus: Annotated[str, typer.Option(help="NATS JetStream URL, e.g. nats://127.0.0.1:4222.")],
    db: Annotated[str, typer.Option(help="Shared PostgreSQL store: postgresql+psycopg://USER@HOST/DB.")],
    config: Annotated[Path | None, typer.Option(help="kubeguard TOML configuration (the same as serve's).")] = None,
    partitions: Annotated[
        int, typer.Option(help="Partitions of the audit stream; used only when the stream is first created.")
    ] = 16,
    ack_wait: Annotated[
        float, typer.Option(help="Seconds before an unacknowledged batch is redelivered (set at consumer creation).")
    ] = 30.0,
    replicas: Annotated[
        int, typer.Option(help="JetStream replicas of the streams (1-5), used when they are created.")
    ] = 1,
    max_attempts: Annotated[
        int, typer.Option(help="Failed detection attempts before a batch goes to the dead-letter subject.")
    ] = 5,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT.")] = None,
) -> None:
    """Process audit batches from NATS JetStream into the shared store (scale-out mode)."""
    from kubeguard.bus.run import WorkerError, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(
            bus,
            db,
            config,
            partitions=partitions,
            ack_wait=ack_wait,
            replicas=replicas,
            max_attempts=max_attempts,
            metrics_port=metrics_port,
        )
    except WorkerError as exc:
        raise (UsageError(str(exc)) if exc.usage else CliError(str(exc))) from exc
