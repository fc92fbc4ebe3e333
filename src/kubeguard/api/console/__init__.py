"""The investigation console: server-rendered pages under ``/console/`` and their JSON API under ``/api/``.

Why server-rendered HTML and SVG with one small hand-written script instead of a front-end framework:
the pages are mostly tables and charts of data the server already holds, so rendering them where the data
is keeps every page one request (fast at a million stored events), works offline and without a CDN,
needs no npm build step on a fresh clone, and leaves no third-party code to vet in a security product.
The script only draws the graph, expands nodes on click and keeps the suppression preview live.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kubeguard.api.console import api, pages
from kubeguard.api.console.oidc import OidcClient, OidcConfig
from kubeguard.api.console.sessions import SessionStore

STATIC = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    options = app.state.context.options
    app.state.console_sessions = SessionStore(lifetime_seconds=options.session_hours * 3600)
    app.state.console_oidc = None
    if options.oidc_issuer:
        app.state.console_oidc = OidcClient(
            OidcConfig(options.oidc_issuer, options.oidc_client_id, options.oidc_client_secret,
                       tuple(options.oidc_allowed))
        )
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
