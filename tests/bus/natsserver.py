"""A private ``nats-server -js`` per test, on its own port and store directory (never the shared one)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from api.server import free_port


def _binary_or_skip() -> str:
    binary = shutil.which("nats-server")
    if binary is None:
        message = "nats-server is not installed"
        if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} (KUBEGUARD_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return binary


@contextmanager
def private_nats(store_dir: Path) -> Iterator[str]:
    """Start JetStream on a free loopback port; yields its URL and stops it afterwards."""
    binary = _binary_or_skip()
    port = free_port()
    store_dir.mkdir(parents=True, exist_ok=True)
    log = (store_dir / "nats.log").open("wb")
    process = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server did not start: {(store_dir / 'nats.log').read_text()}") from None
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()
