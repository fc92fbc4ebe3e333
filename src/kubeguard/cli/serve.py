"""``kubeguard serve``: the options; :mod:`kubeguard.serve` builds and runs the service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kubeguard.cli.errors import UsageError, guarded


@guarded("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on; non-loopback needs credentials.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: Annotated[str | None, typer.Option(help="SQLite file or SQLAlchemy URL (postgresql+psycopg://...).")] = None,
    config: Annotated[Path | None, typer.Option(help="kubeguard TOML configuration.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain for HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS.")] = None,
    client_ca: Annotated[Path | None, typer.Option(help="Require client certificates signed by this CA.")] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Live source: cloudwatch:LOG_GROUP, file:PATH or pubsub:SUBSCRIPTION; repeatable."),
    ] = None,
    since: Annotated[str, typer.Option(help="First start of a source: read from this far back (1h, 7d, ISO).")] = "1h",
    rules: Annotated[
        list[str] | None, typer.Option("--rules", help="Sigma rule file or directory (kubernetes/audit); repeatable.")
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(help="NATS JetStream URL (nats://HOST:PORT): publish batches for `kubeguard worker`."),
    ] = None,
    bus_replicas: Annotated[
        int, typer.Option(help="JetStream replicas of the audit stream (1-5), used when the stream is created.")
    ] = 1,
) -> None:
    """Run the audit webhook, finding store and GuardDuty-compatible API."""
    from kubeguard.serve import ServeError, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(
            host, port, db, config, tls_cert, tls_key, client_ca,
            sources=source, since=since, rules=rules, bus=bus, bus_replicas=bus_replicas,
        )
    except ServeError as exc:
        raise UsageError(str(exc)) from exc
