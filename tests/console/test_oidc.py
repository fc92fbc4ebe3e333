"""Single sign-on to the console against a real OpenID Connect provider, in chromium.

The provider is panva/node-oidc-provider (``oidc_provider/``: an npm package pinned by its lockfile and
installed here with ``npm ci`` on first use), run as a process of its own with its development sign-in
pages: any login and password, the login becoming the subject and the address (``<login>@example.test``
when the login has no ``@``).
kubeguard runs as a real ``kubeguard serve`` with access keys configured (so the console asks for a
sign-in) and the provider as ``oidc_issuer``, letting in ``erin@example.test`` and ``@ops.example.test``
only. Skipped without Node.js and npm, unless ``KUBEGUARD_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from api.server import Server, free_port

from console.conftest import ACCESS_KEY, SECRET, PageWatch, _missing

PROVIDER = Path(__file__).parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "kubeguard-console", "oidc-test-client-secret-4c1d"


def install_provider() -> None:
    """``npm ci`` once (the lockfile pins every package), serialised between test processes."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        _missing("Node.js and npm are not installed (apt-get install nodejs npm): the OpenID provider needs them")
    with (PROVIDER / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER, capture_output=True,
                                  text=True, timeout=300)
            if done.returncode != 0:
                _missing(f"npm ci failed in {PROVIDER}: {done.stderr[-500:]}")


class Provider:
    def __init__(self, port: int, redirect_uri: str, workdir: Path) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        log = (workdir / "provider.log").open("wb")
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", "provider.mjs", str(port), CLIENT_ID, CLIENT_SECRET, redirect_uri],
            cwd=PROVIDER, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the OpenID provider did not come up: {(workdir / 'provider.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="module")
def sso(tmp_path_factory, chromium) -> Iterator[tuple[Server, Provider]]:
    install_provider()
    workdir = tmp_path_factory.mktemp("console-oidc")
    provider_port = free_port()
    config = (
        f'[serve]\naccess_keys = {{ {ACCESS_KEY} = "{SECRET}" }}\n'
        f'oidc_issuer = "http://127.0.0.1:{provider_port}"\noidc_client_id = "{CLIENT_ID}"\n'
        f'oidc_allowed = ["erin@example.test", "@ops.example.test"]\n'
    )
    server = Server(f"sqlite:///{workdir / 'kubeguard.db'}", workdir, config,
                    env={"KUBEGUARD_OIDC_CLIENT_SECRET": CLIENT_SECRET}).start()
    try:
        provider = Provider(provider_port, f"{server.url}/console/oidc/callback", workdir)
        try:
            yield server, provider
        finally:
            provider.stop()
    finally:
        server.stop()


def sign_in_at_provider(page: Any, login: str) -> None:
    """The provider's development pages: any login and password, then consent."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if page.locator("button:has-text('Continue')").count():
        page.click("button:has-text('Continue')")


def test_single_sign_on_lets_in_whom_the_configuration_names(sso, chromium):
    server, _provider = sso
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        watch = PageWatch(page)
        page.goto(f"{server.url}/console/findings?severity=high")
        assert "/console/login" in page.url
        page.click("text=Sign in with single sign-on")
        assert page.url.startswith(_provider.issuer)
        sign_in_at_provider(page, "erin")
        page.wait_for_url(f"{server.url}/console/findings?severity=high")
        assert "oidc:erin@example.test" in page.content()
        # The provider's development pages load a web font this offline machine cannot reach, and have no
        # favicon: of the way there, what concerns kubeguard's pages is what names them, and script errors.
        assert [p for p in watch.take() if server.url in p or p.startswith("script error")] == []
        page.reload()
        assert "oidc:erin@example.test" in page.content()
        assert watch.take() == []
        # The session reads the console's JSON API, as any signed-in browser's does.
        cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
        assert "kg_oidc" not in cookies  # the login's state cookie is gone once used
        answer = httpx.get(f"{server.url}/api/summary", cookies={"kg_session": cookies["kg_session"]})
        assert answer.status_code == 200
        # The secret never reaches the browser.
        assert CLIENT_SECRET not in page.content()
    finally:
        context.close()


@pytest.mark.parametrize(
    ("login", "allowed"),
    [
        ("dana@ops.example.test", True),  # by the @ops.example.test entry
        ("dana@xops.example.test", False),
        ("unverified-dana@ops.example.test", False),  # the provider does not vouch for the address
        ("mallory", False),  # mallory@example.test: named nowhere
    ],
)
def test_only_whom_the_configuration_names_gets_in(sso, chromium, login, allowed):
    server, _provider = sso
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{server.url}/console/login/oidc?next=/console/")
        sign_in_at_provider(page, login)
        page.wait_for_url(f"{server.url}/console/**")
        if not allowed:
            assert "may not sign in to this console" in page.content()
        page.goto(f"{server.url}/console/")
        assert ("/console/login" not in page.url) is allowed, login
        assert (f"oidc:{login}" in page.content()) is allowed, login
    finally:
        context.close()


def test_an_answer_this_browser_did_not_ask_for_is_refused(sso, chromium):
    """A login started in one browser cannot be finished in another (login CSRF), nor replayed."""
    server, _provider = sso
    started = chromium.new_context()
    victim = chromium.new_context()
    try:
        page = started.new_page()
        callback: list[str] = []
        page.on("request", lambda request: callback.append(request.url)
                if request.url.startswith(f"{server.url}/console/oidc/callback") else None)
        page.goto(f"{server.url}/console/login/oidc?next=/console/")
        sign_in_at_provider(page, "erin")
        page.wait_for_url(f"{server.url}/console/**")
        assert callback, "the provider did not send the browser back"
        other = victim.new_page()
        other.goto(callback[0])  # the same answer, in a browser without the login's state cookie
        assert "not started by this browser" in other.content()
        other.goto(f"{server.url}/console/")
        assert "/console/login" in other.url
        # Again in the browser that used it, its state cookie put back: an answer counts once.
        state = parse_qs(urlsplit(callback[0]).query)["state"][0]
        started.add_cookies([{"name": "kg_oidc", "value": state, "url": f"{server.url}/console/oidc/callback"}])
        page.goto(callback[0])
        assert "expired or was already used" in page.content()
    finally:
        started.close()
        victim.close()


def test_serve_refuses_an_incomplete_single_sign_on_configuration(tmp_path):
    config = '[serve]\noidc_issuer = "https://id.example.test"\noidc_client_id = "x"\noidc_client_secret = "y"\n'
    (tmp_path / "kubeguard.toml").write_text(config)
    env = {key: value for key, value in os.environ.items() if not key.startswith("KUBEGUARD_OIDC")}
    done = subprocess.run(
        [sys.executable, "-m", "kubeguard.cli", "serve", "--config", str(tmp_path / "kubeguard.toml"),
         "--db", f"sqlite:///{tmp_path / 'k.db'}", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode != 0
    assert "oidc_allowed must say who may sign in" in done.stdout + done.stderr
