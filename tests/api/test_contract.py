"""Every route of the service's OpenAPI description, driven by schemathesis: no input gets a 500.

The app runs in-process on a fresh SQLite store (open loopback access, as ``kubeguard serve`` starts by
default). Examples are derandomised so that a failure is reproducible, and bounded so the suite stays fast.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from kubeguard.api.app import build_context, create_app
from kubeguard.api.options import serve_options
from kubeguard.config import Settings


def _app():
    directory = Path(tempfile.mkdtemp(prefix="kubeguard-contract-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    context, _drainer = build_context(
        Settings(), serve_options({}), f"sqlite:///{directory / 'contract.db'}", open_access=True, mutual_tls=False
    )
    context.drainer_alive = None  # this app runs no detection, so readiness must not wait for it
    return create_app(context, None)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_route_answers_500(case):
    response = case.call()
    if case.formatted_path == "/healthz/ready" and response.status_code == 503:
        # Readiness answers 503 by design while not ready (here: the test runs no drainer), with reasons.
        assert response.json()["problems"] == ["detection is not running"]
        return
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:500])
    content_type = response.headers.get("content-type") or [""]
    if content_type[0].startswith("application/json"):
        response.json()
