"""The verified client certificate of a connection, for binding a certificate to a cluster.

uvicorn passes the ASGI app no TLS details, so the HTTP protocol is extended: when a connection is made,
the peer certificate (already verified against ``--client-ca`` by the handshake) is read once, and its
identities go into the lifespan state that uvicorn copies into every request's ``scope["state"]`` on that
connection. Identities are spelled as in ``[serve] client_certificates``: ``CN=<common name>`` for the
subject, and ``DNS:<name>``, ``URI:<uri>``, ``IP:<address>`` or ``email:<address>`` for alternative names.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

#: Key of the peer's identities in the request state.
STATE_KEY = "kubeguard_tls_peer"


def peer_identities(certificate: dict[str, Any]) -> tuple[str, ...]:
    """``CN=...`` for each subject commonName, then each subjectAltName as ``TYPE:value``."""
    names = [
        f"CN={value}"
        for relative_name in certificate.get("subject", ())
        for key, value in relative_name
        if key == "commonName"
    ]
    alt_type = {"DNS": "DNS", "URI": "URI", "IP Address": "IP", "email": "email"}
    names += [f"{alt_type[kind]}:{value}" for kind, value in certificate.get("subjectAltName", ()) if kind in alt_type]
    return tuple(names)


class PeerCertificateProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol, plus the verified client certificate's identities in the request state."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert() if ssl_object is not None else None
        if certificate:
            # A per-connection copy: the lifespan state itself is shared by every connection.
            self.app_state = {**self.app_state, STATE_KEY: peer_identities(certificate)}
