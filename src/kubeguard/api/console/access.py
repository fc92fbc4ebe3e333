"""Who may read the console's data: the API's SigV4 callers, and browsers with a signed-in session."""

from __future__ import annotations

from fastapi import Request

from kubeguard.api.auth import context, require_signature
from kubeguard.api.console import sessions


async def require_reader(request: Request) -> None:
    """FastAPI dependency of the ``/api/`` routes the console reads: open, a session, or a signature."""
    if context(request).open_access or sessions.signed_in(request) is not None:
        return
    await require_signature(request)
