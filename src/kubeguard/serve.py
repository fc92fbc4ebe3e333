"""``kubeguard serve``: the webhook, the store, detection and the GuardDuty-compatible API in one process.

Nothing listens beyond loopback unless credentials are configured: on a non-loopback address the service
refuses to start without SigV4 access keys, webhook bearer tokens or a client CA. Credentials come from
the ``[serve]`` table of ``--config`` and from ``KUBEGUARD_ACCESS_KEYS`` / ``KUBEGUARD_WEBHOOK_TOKENS``.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from pathlib import Path

import uvicorn

from kubeguard.api.app import build_context, create_app
from kubeguard.api.options import serve_options
from kubeguard.api.tls_peer import PeerCertificateProtocol
from kubeguard.config import ConfigError, load_settings
from kubeguard.store.database import url_from_option

log = logging.getLogger(__name__)


class ServeError(RuntimeError):
    """The service cannot start with this configuration; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    db: str | None = None,
    config: str | Path | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    client_ca: str | Path | None = None,
    bus: str | None = None,
    bus_replicas: int = 1,
) -> None:
    """Run the service until interrupted; with ``bus``, publish batches to JetStream for the workers."""
    try:
        settings = load_settings(config)
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
    context, drainer = build_context(settings, options, db_url, open_access=open_access, mutual_tls=bool(client_ca))
    if bus:
        from kubeguard.bus.ingest import BusIngest
        from kubeguard.bus.layout import BusSettings

        settings = BusSettings(max_bytes=options.max_backlog_bytes, replicas=bus_replicas)
        context.bus = BusIngest(bus, context.engine, context.metrics.registry, settings)
        # The workers detect; this process receives, publishes and serves. JetStream bounds the backlog.
        drainer = None
        context.drainer_alive = None
        context.backlog = None
        context.wake_drainer = None
    app = create_app(context, drainer)
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


if __name__ == "__main__":  # ``python -m kubeguard.serve`` is ``kubeguard serve``
    import sys

    from kubeguard.cli import app

    app(["serve", *sys.argv[1:]])
