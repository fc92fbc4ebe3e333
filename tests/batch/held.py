"""A real service behind a uvicorn listener whose drainer does not run, so a test builds the backlog it wants
and drains it by hand (``drainer.drain_once()``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from api.server import free_port

from batch.traffic import SETTINGS
from kubeguard.api.app import build_context, create_app
from kubeguard.api.options import serve_options


@contextlib.contextmanager
def held_service(db_url: str, options: dict[str, Any], settings: Any = SETTINGS) -> Iterator[tuple[str, Any, Any]]:
    """(url, context, drainer) of a service on ``db_url`` with ``[serve]`` ``options``; its drainer held back."""
    context, drainer = build_context(settings, serve_options(options), db_url, open_access=True, mutual_tls=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context, None), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", context, drainer
    finally:
        server.should_exit = True
        thread.join(10)
