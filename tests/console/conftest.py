"""A real ``kubeguard serve`` fed the lab's audit log through its webhook, and Debian's chromium to read it.

The browser tests skip when chromium or Playwright is missing, unless ``KUBEGUARD_REQUIRE_SERVICES=1``
says the run must be complete (CI installs both: ``apt-get install -y chromium`` and the ``test`` extra).
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from api.server import Server
from store.conftest import engine  # noqa: F401 - the store fixture (SQLite and PostgreSQL), shared

from kubeguard.config import Settings
from kubeguard.scan import run_scan

ROOT = Path(__file__).resolve().parents[2]
LAB_LOG = ROOT / "examples" / "lab-audit.jsonl.gz"
CHROMIUM = Path(os.environ.get("KUBEGUARD_CHROMIUM", "/usr/bin/chromium"))
ACCESS_KEY, SECRET = "AKIDCONSOLETEST", "console-test-secret-9f3k"
PASSWORD = "correct horse battery staple"


def _missing(message: str) -> None:
    if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (KUBEGUARD_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def feed_lab_log(url: str, headers: dict[str, str] | None = None, batch: int = 200) -> int:
    """POST the lab log to the webhook as EventLists, as kube-apiserver's webhook backend does."""
    lines = gzip.decompress(LAB_LOG.read_bytes()).splitlines()
    for start in range(0, len(lines), batch):
        items = [orjson.loads(line) for line in lines[start : start + batch]]
        body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
        response = httpx.post(f"{url}/k8s-audit", json=body, headers=headers or {}, timeout=30)
        response.raise_for_status()
    return len(lines)


def wait_drained(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    """Until the spool has no pending batch (detection and the activity store caught up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{url}/metrics", headers=headers or {}, timeout=10).text
        if "kubeguard_spool_pending_events 0.0" in metrics:
            return
        time.sleep(0.2)
    raise AssertionError("the spool did not drain")


@pytest.fixture(scope="session")
def lab_findings() -> list[dict[str, Any]]:
    """What ``kubeguard scan`` finds in the same log: the facts the pages must show."""
    return run_scan([str(LAB_LOG)], Settings(), pipeline_options={}).findings


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's synchronous API keeps an event loop
    running in the process while it is open, and a later test of another module in the same worker that
    calls ``asyncio.run`` would fail ("cannot be called from a running event loop")."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _missing(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page at a laptop's screen size, closed after the test."""
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory) -> Iterator[Server]:
    """Loopback, no credentials: the out-of-the-box service, fed the lab log."""
    workdir = tmp_path_factory.mktemp("console-open")
    server = Server(f"sqlite:///{workdir / 'kubeguard.db'}", workdir).start()
    try:
        feed_lab_log(server.url)
        wait_drained(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory) -> Iterator[Server]:
    """Credentials configured: the console asks for a sign-in."""
    workdir = tmp_path_factory.mktemp("console-locked")
    config = f'[serve]\naccess_keys = {{ {ACCESS_KEY} = "{SECRET}" }}\nwebhook_tokens = {{ "hook-token" = "" }}\nconsole_password = "{PASSWORD}"\n'
    server = Server(f"sqlite:///{workdir / 'kubeguard.db'}", workdir, config).start()
    try:
        hook = {"Authorization": "Bearer hook-token"}
        feed_lab_log(server.url, hook)
        wait_drained(server.url, hook)
        yield server
    finally:
        server.stop()


class PageWatch:
    """Collects what must never happen on a console page: script errors, failed or refused requests."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", lambda message: self.problems.append(f"console {message.type}: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"request failed: {request.url}"))
        page.on("response", lambda response: self.problems.append(f"HTTP {response.status}: {response.url}")
                if response.status >= 400 else None)

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems
