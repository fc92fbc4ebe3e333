"""Who may call what.

- Loopback listener and no credential configured: everything is open (the out-of-the-box developer case),
  and a bearer token the webhook does not know is ignored rather than refused.
- Otherwise the GuardDuty and native API need a valid SigV4 signature by a configured access key, even
  under mutual TLS;
  the webhook needs a configured bearer token (which may also name the cluster) or a client certificate
  (when ``--client-ca`` is set, the TLS handshake has already verified it; ``[serve] client_certificates``
  binds a certificate's subject or alternative name to a cluster, as a token can be); ``/metrics`` takes
  either.
- ``/healthz`` is always open: it says nothing but "up".
"""

from __future__ import annotations

import hmac

from fastapi import Request

from kubeguard.api.context import ServiceContext
from kubeguard.api.errors import AccessDenied, Unauthorized
from kubeguard.api.params import read_body
from kubeguard.api.sigv4 import SignatureError, SignedRequest, verify
from kubeguard.api.tls_peer import STATE_KEY


def context(request: Request) -> ServiceContext:
    return request.app.state.context


async def require_signature(request: Request) -> None:
    """FastAPI dependency of the API routes."""
    ctx = context(request)
    if ctx.open_access:
        return
    # A client certificate is the webhook's credential, not the API's: the CA that signs the API server's
    # client certificate often signs kubelets' too, and none of them may read or delete findings.
    body = await read_body(request)
    signed = SignedRequest(
        method=request.method,
        raw_path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
        body=body,
    )
    try:
        verify(signed, ctx.options.access_keys.get, region=ctx.settings.region)
    except SignatureError as exc:
        raise AccessDenied(f"request signature rejected: {exc}") from exc


def webhook_identity(request: Request) -> str | None:
    """Authorise a webhook call; returns the cluster its token names ("" or None when it names none)."""
    ctx = context(request)
    token = _bearer(request)
    if token is not None:
        for known, cluster in ctx.options.webhook_tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return cluster
        if ctx.open_access and not ctx.options.webhook_tokens:
            # Open loopback listener with no tokens configured: a kubeconfig that carries a placeholder
            # token (like deploy/'s example) must still deliver, as every other caller may.
            return None
        raise Unauthorized("unknown bearer token")
    if ctx.mutual_tls:
        return _certificate_cluster(request)
    if ctx.open_access:
        return None
    raise Unauthorized("a bearer token or client certificate is required")


def _certificate_cluster(request: Request) -> str | None:
    """The cluster the verified client certificate is bound to (None: any, when no binding is configured)."""
    bindings = context(request).options.client_certificates
    if not bindings:
        return None
    identities = (request.scope.get("state") or {}).get(STATE_KEY, ())
    for identity in identities:
        if identity in bindings:
            return bindings[identity]
    raise AccessDenied("this client certificate is not bound to a cluster ([serve] client_certificates)")


async def require_metrics_access(request: Request) -> None:
    ctx = context(request)
    if ctx.open_access or ctx.mutual_tls:
        return
    if _bearer(request) is not None:
        webhook_identity(request)
        return
    await require_signature(request)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
