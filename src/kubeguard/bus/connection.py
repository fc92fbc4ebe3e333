"""Connecting to NATS, and the checks every bus process makes before it starts."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client

log = logging.getLogger(__name__)

BUS_SCHEMES = ("nats", "tls", "ws", "wss")


class BusConfigError(RuntimeError):
    """``--bus`` cannot be used as given; the message says what to change."""


class BusUnreachable(BusConfigError):
    """NATS did not answer at start-up."""


def check_bus_options(bus_url: str, db_url: str) -> None:
    """Scale-out shares detector state through the database: SQLite is one process's file, so refuse it."""
    scheme = urlsplit(bus_url).scheme
    if scheme not in BUS_SCHEMES:
        raise BusConfigError(f"--bus must be a NATS URL (nats://HOST:PORT), not {bus_url!r}")
    if db_url.startswith("sqlite"):
        raise BusConfigError(
            "--bus needs a shared PostgreSQL store (--db postgresql+psycopg://USER@HOST/DB): with SQLite each "
            "process would keep its own findings and detector state. Run without --bus for single-process mode."
        )


def redacted(url: str) -> str:
    """The URL without credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


async def connect(url: str, name: str) -> Client:
    """Connect, reconnecting for ever once connected (JetStream keeps the work while NATS restarts).

    An unreachable server at start-up is an error, not an endless retry: nats-py's reconnect policy also
    governs the first connection (and 0 or -1 attempts mean "for ever"), so a probe with one retry comes first.
    """
    try:
        probe = await nats.connect(
            url,
            name=name,
            connect_timeout=5,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            error_cb=_quiet,
        )
        await probe.close()
        return await nats.connect(
            url,
            name=name,
            connect_timeout=5,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            allow_reconnect=True,
            error_cb=_log_error,
            disconnected_cb=_disconnected,
            reconnected_cb=_reconnected,
        )
    except Exception as exc:  # noqa: BLE001 - nats-py raises several unrelated types for "cannot connect"
        raise BusUnreachable(f"cannot connect to NATS at {redacted(url)}: {type(exc).__name__}: {exc}") from exc


def check_reachable(url: str) -> None:
    """Fail at start-up, with the reason, when NATS does not answer (before a server starts listening)."""

    async def probe() -> None:
        client = await connect(url, "kubeguard-probe")
        await client.close()

    asyncio.run(probe())


async def _quiet(_exc: Exception) -> None:
    return None


async def _log_error(exc: Exception) -> None:
    log.warning("NATS: %s: %s", type(exc).__name__, exc)


async def _disconnected() -> None:
    log.warning("NATS connection lost; reconnecting")


async def _reconnected() -> None:
    log.info("NATS connection restored")
