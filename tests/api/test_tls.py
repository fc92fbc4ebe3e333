"""HTTPS and mutual TLS: ``kubeguard serve --tls-cert --tls-key [--client-ca]`` with a throwaway CA from openssl."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.publishing import lab_batches
from api.server import Server

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
SERVER_EXT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    "subjectAltName=IP:127.0.0.1\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
)
CLIENT_EXT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
)


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30)


def _key(cwd: Path, name: str) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _self_signed(cwd: Path, name: str, subject: str) -> None:
    _key(cwd, name)
    (cwd / f"{name}.ext").write_text(CA_EXT)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key", "-days", "2",
        "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd,
    )  # fmt: skip


def _issued(cwd: Path, name: str, subject: str, extensions: str, ca: str = "ca") -> None:
    _key(cwd, name)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    if not Path(OPENSSL).exists():
        message = "openssl is not installed: the TLS tests need it to make a throwaway CA"
        if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("pki")
    _self_signed(directory, "ca", "/CN=kubeguard test CA")
    _issued(directory, "server", "/CN=127.0.0.1", SERVER_EXT)
    _issued(directory, "client", "/CN=kube-apiserver", CLIENT_EXT)
    _issued(directory, "alpha", "/CN=apiserver-alpha", CLIENT_EXT + "subjectAltName=DNS:alpha.example\n")
    _self_signed(directory, "rogue-ca", "/CN=someone else")
    _issued(directory, "rogue", "/CN=kube-apiserver", CLIENT_EXT, ca="rogue-ca")
    return Pki(
        *(directory / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")),
        directory / "rogue.crt",
        directory / "rogue.key",
    )


def tls_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def first_answer(server: Server, context: ssl.SSLContext) -> bytes | str:
    """What the server answers a raw HTTPS request made with ``context``: bytes, or the TLS error's reason."""
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        try:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return tls.recv(15)
        except (ssl.SSLError, ConnectionResetError) as exc:
            return getattr(exc, "reason", None) or type(exc).__name__


class TlsServer(Server):
    """``kubeguard serve`` over HTTPS; ``health`` is the TLS context its readiness probe uses."""

    scheme = "https"

    def __init__(self, db_url: str, workdir: Path, tls_args: list[str], health: ssl.SSLContext) -> None:
        super().__init__(db_url, workdir, args=tls_args)
        self.health = health

    def _healthy(self) -> bool:
        return httpx.get(f"{self.url}/healthz", verify=self.health, timeout=1).status_code == 200


@pytest.fixture
def start_tls(pki, tmp_path):
    servers: list[TlsServer] = []
    config = {"text": ""}

    def start(*extra: str | Path, health: ssl.SSLContext) -> TlsServer:
        tls_args = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), *map(str, extra)]
        server = TlsServer(f"sqlite:///{tmp_path / 'kubeguard.db'}", tmp_path, tls_args, health)
        server.config_path.write_text(config["text"])
        servers.append(server)
        return server.start()

    start.config = lambda text: config.__setitem__("text", text)
    yield start
    for server in servers:
        server.stop()


def test_https_with_the_ca_bundle_and_no_plain_http(pki, start_tls):
    server = start_tls(health=tls_context(pki))
    with httpx.Client(verify=tls_context(pki), timeout=5) as client:
        assert client.get(f"{server.url}/healthz").status_code == 200
        response = client.post(f"{server.url}/k8s-audit/lab", content=lab_batches()[0])
        assert response.status_code == 200 and response.json()["accepted"] == 229
        assert client.get(f"{server.url}/api/spool").json()["events"] == 229
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{server.url}/healthz", verify=ssl.create_default_context(), timeout=5)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)


def test_client_ca_requires_a_client_certificate_which_authorises_the_webhook(pki, start_tls):
    trusted = tls_context(pki, pki.client_cert, pki.client_key)
    server = start_tls("--client-ca", pki.ca, health=trusted)
    batch = lab_batches()[0]
    # TLS 1.3 finishes the client's side of the handshake first; the server then drops the connection
    # (or sends an alert) instead of answering, where the same request with the client certificate is answered.
    assert first_answer(server, trusted) == b"HTTP/1.1 200 OK"
    for refused in (tls_context(pki), tls_context(pki, pki.rogue_cert, pki.rogue_key)):
        assert first_answer(server, refused) in (b"", "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_UNKNOWN_CA")
    for refused in (tls_context(pki), tls_context(pki, pki.rogue_cert, pki.rogue_key)):
        with pytest.raises(httpx.TransportError), httpx.Client(verify=refused, timeout=5) as client:
            client.post(f"{server.url}/k8s-audit/lab", content=batch)
    with httpx.Client(verify=trusted, timeout=5) as client:
        response = client.post(f"{server.url}/k8s-audit/lab", content=batch)
        assert response.status_code == 200 and response.json()["accepted"] == 229
        # The certificate is the webhook's credential: neither the webhook nor /metrics asks for a token.
        metrics = client.get(f"{server.url}/metrics")
        assert metrics.status_code == 200
        assert 'kubeguard_events_received_total{cluster="lab"} 229.0' in metrics.text
        # It is not the API's: findings and detectors still need a SigV4 signature by a configured key.
        denied = client.get(f"{server.url}/api/spool")
        assert denied.status_code == 403 and denied.headers["x-amzn-errortype"] == "AccessDeniedException"
        assert client.get(f"{server.url}/detector").status_code == 403


def test_a_client_certificate_bound_to_a_cluster_reports_for_that_cluster_only(pki, start_tls):
    alpha = tls_context(pki, pki.ca.with_name("alpha.crt"), pki.ca.with_name("alpha.key"))
    unbound = tls_context(pki, pki.client_cert, pki.client_key)
    start_tls.config('[serve]\nclient_certificates = { "DNS:alpha.example" = "alpha" }\n')
    server = start_tls("--client-ca", pki.ca, health=alpha)
    batch = lab_batches()[0]
    with httpx.Client(verify=alpha, timeout=5) as client:
        assert client.post(f"{server.url}/k8s-audit/alpha", content=batch).status_code == 200
        assert client.post(f"{server.url}/k8s-audit", content=batch).status_code == 200
        refused = client.post(f"{server.url}/k8s-audit/beta", content=batch)
        assert refused.status_code == 403 and "alpha" in refused.text
        metrics = client.get(f"{server.url}/metrics").text
        assert 'kubeguard_events_received_total{cluster="alpha"} 458.0' in metrics
        assert 'cluster="beta"' not in metrics
    with httpx.Client(verify=unbound, timeout=5) as client:
        response = client.post(f"{server.url}/k8s-audit/alpha", content=batch)
        assert response.status_code == 403 and "not bound" in response.text
