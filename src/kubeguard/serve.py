"""``kubeguard serve``: the webhook, the store, detection and the GuardDuty-compatible API in one process.

Nothing listens beyond loopback unless credentials are configured: on a non-loopback address the service
refuses to start without SigV4 access keys, webhook bearer tokens or a client CA. Credentials come from
the ``[serve]`` table of ``--config`` and from ``KUBEGUARD_ACCESS_KEYS`` / ``KUBEGUARD_WEBHOOK_TOKENS``.
"""

from __future__ import annotations

import logging
import ssl
import sys
from pathlib import Path

import uvicorn

from kubeguard.api.app import build_context, create_app
from kubeguard.api.options import is_loopback, serve_options
from kubeguard.api.tls_peer import PeerCertificateProtocol
from kubeguard.collector import tune_for_service
from kubeguard.config import ConfigError, load_settings
from kubeguard.detectors.rules import RuleLoadError
from kubeguard.store.database import url_from_option

log = logging.getLogger(__name__)

#: How long a thread may hold the interpreter lock while another waits for it (Python's default: 5 ms).
#: Detection runs in a thread of this process and is busy for as long as batches wait; each time the event
#: loop needs the lock back (a chunk of a request body, a worker thread's result, a commit's answer: a dozen
#: times per webhook request) it waited up to the whole interval, so a 400-event batch took 150 ms to
#: acknowledge where its own work takes a few. At 1 ms the loop gets the lock back five times sooner, and
#: the 200 follows the commit by that much less (60-batch bursts of 400-event EventLists under load: about
#: 1.3x the acknowledged rate on SQLite); the price is more frequent switches in detection, too few to measure.
SWITCH_INTERVAL_SECONDS = 0.001


class ServeError(RuntimeError):
    """The service cannot start with this configuration; the message says what to change."""


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    db: str | None = None,
    config: str | Path | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    client_ca: str | Path | None = None,
    *,
    sources: list[str] | None = None,
    since: str = "1h",
    rules: list[str] | None = None,
    bus: str | None = None,
    bus_replicas: int = 1,
) -> None:
    """Run the service until interrupted; ``sources`` are live readers (``cloudwatch:...``, ``file:...``);
    with ``bus``, webhook batches are published to JetStream for the workers."""
    try:
        settings = load_settings(config)
        settings.rules.paths = [*settings.rules.paths, *(rules or [])]
        options = serve_options(settings.serve)
    except (ConfigError, ValueError) as exc:  # msgspec.ValidationError is a ValueError
        raise ServeError(f"configuration: {exc}") from exc
    if client_ca and not tls_cert:
        raise ServeError("--client-ca needs --tls-cert and --tls-key")
    if bool(tls_cert) != bool(tls_key):
        raise ServeError("--tls-cert and --tls-key go together")
    loopback = is_loopback(host)
    if not loopback and not options.has_credentials and not client_ca:
        raise ServeError(
            f"refusing to listen on {host} without credentials: configure [serve] access_keys and "
            "webhook_tokens (or KUBEGUARD_ACCESS_KEYS / KUBEGUARD_WEBHOOK_TOKENS), or --client-ca"
        )
    if not loopback and not tls_cert:
        log.warning("listening on %s without TLS: bearer tokens travel in clear text", host)
    open_access = loopback and not options.has_credentials and not client_ca
    db_url = url_from_option(db)
    if bus:
        from kubeguard.bus.connection import BusConfigError, check_bus_options, check_reachable

        try:
            check_bus_options(bus, db_url)
            check_reachable(bus)
        except BusConfigError as exc:
            raise ServeError(str(exc)) from exc
    try:
        context, drainer = build_context(
            settings, options, db_url, open_access=open_access, mutual_tls=bool(client_ca)
        )
    except RuleLoadError as exc:
        raise ServeError(f"rules: {exc}") from exc
    if bus:
        from kubeguard.bus.ingest import BusIngest
        from kubeguard.bus.layout import BusSettings

        bus_settings = BusSettings(max_bytes=options.max_backlog_bytes, replicas=bus_replicas)
        context.bus = BusIngest(bus, context.engine, context.metrics.registry, bus_settings)
        # The workers detect webhook batches; this process receives, publishes and serves, and JetStream
        # bounds the backlog. Batches of live sources still go through this process's spool and drainer
        # (the same one-transaction processor, whose state the workers share in PostgreSQL).
        context.backlog = None
        context.handoff = None  # webhook batches go to the bus, not to this process's drainer
        if not sources:
            drainer = None
            context.drainer_alive = None
            context.wake_drainer = None
    context.sources = _live_sources(context, settings, options, sources or [], since)
    app = create_app(context, drainer)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    tune_for_service()
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
        http=PeerCertificateProtocol if client_ca else "auto",
        access_log=False,
        log_level="info",
    )


def _live_sources(context, settings, options, cli_sources: list[str], since: str):
    """The live sources of ``--source`` and ``[[sources]]``, sharing the webhook's spool; None without any."""
    from kubeguard.sources.manager import SourceManager
    from kubeguard.sources.spec import SourceSpecError, collect_specs, parse_time

    try:
        specs = collect_specs(cli_sources, settings.sources, options.default_cluster)
        if not specs:
            return None
        manager = SourceManager(
            specs, context.engine, context.spool, since_ms=parse_time(since), wake=context.wake_drainer
        )
    except SourceSpecError as exc:
        raise ServeError(str(exc)) from exc
    context.metrics.registry.register(manager.collector())
    return manager


if __name__ == "__main__":  # ``python -m kubeguard.serve`` is ``kubeguard serve``
    import sys

    from kubeguard.cli import app

    app(["serve", *sys.argv[1:]])
