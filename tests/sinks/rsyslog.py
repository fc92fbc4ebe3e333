"""A private rsyslogd for the syslog sink's tests: its own config, free ports, a temp output file.

It listens on UDP, TCP and TLS (RFC 5425, the ``ossl`` driver from rsyslog-openssl) on loopback and writes
each message as ``PRI<TAB>VERSION<TAB>APP<TAB>MSGID<TAB>STRUCTURED-DATA<TAB>MSG`` using rsyslog's own RFC
5424 parser, so the test reads what a SIEM behind rsyslog would see. Without ``rsyslogd`` the tests skip,
unless ``KUBEGUARD_REQUIRE_SERVICES=1`` (CI: ``apt-get install -y rsyslog rsyslog-openssl``).
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: rsyslog's OpenSSL stream driver (Debian's rsyslog-openssl), wherever the architecture puts it.
OSSL_DRIVERS = sorted(Path("/usr/lib").glob("*/rsyslog/lmnsd_ossl.so")) + sorted(Path("/usr/lib/rsyslog").glob("lmnsd_ossl.so"))


def rsyslogd_or_skip() -> str:
    binary = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if binary is None:
        reason = "rsyslogd is not installed (apt-get install -y rsyslog rsyslog-openssl)"
        if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, and KUBEGUARD_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return binary


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Rsyslog:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.output = workdir / "messages.log"
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.tcp_port = free_port()
        self.tls_port = free_port()
        self.tls = bool(OSSL_DRIVERS)
        self.cert, self.key = self_signed(workdir)
        self.process: subprocess.Popen[bytes] | None = None
        self.config = workdir / "rsyslog.conf"
        self.config.write_text(self._config())

    def _config(self) -> str:
        tls_input = ""
        if self.tls:
            tls_input = (
                f'input(type="imtcp" port="{self.tls_port}" address="127.0.0.1" streamDriver.name="ossl" '
                'streamDriver.mode="1" streamDriver.authMode="anon")\n'
            )
        return f"""
global(workDirectory="{self.workdir}" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{self.cert}" defaultNetstreamDriverCertFile="{self.cert}"
       defaultNetstreamDriverKeyFile="{self.key}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" port="{self.udp_port}" address="127.0.0.1")
input(type="imtcp" port="{self.tcp_port}" address="127.0.0.1")
{tls_input}
template(name="fields" type="string"
         string="%pri%\\t%protocol-version%\\t%app-name%\\t%msgid%\\t%structured-data%\\t%msg%\\n")
action(type="omfile" file="{self.output}" template="fields" flushOnTXEnd="on" asyncWriting="off")
"""

    def start(self) -> Rsyslog:
        log = (self.workdir / "rsyslogd.out").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-n", "-f", str(self.config), "-i", str(self.workdir / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(self.workdir / 'rsyslogd.out').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)

    def records(self) -> list[list[str]]:
        if not self.output.exists():
            return []
        return [line.split("\t", 5) for line in self.output.read_text().splitlines() if line]
