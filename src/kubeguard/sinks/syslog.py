"""Syslog (RFC 5424) over UDP (RFC 5426), TCP (RFC 6587 octet counting) or TLS (RFC 5425).

Each finding is one message: ``<PRI>1 TIMESTAMP HOST kubeguard PID FINDING [kubeguard@32473 id="..."
type="..." severity="8" cluster="..."] MSG``, where MSG is the sink's format (a one-line JSON document by
default) and the structured data lets a SIEM route on the essentials without parsing MSG. Syslog severity
follows the finding: Critical -> crit, High -> err, Medium -> warning, Low -> notice. 32473 is the private
enterprise number RFC 5612 reserves for examples; kubeguard has none of its own.

Delivery guarantees differ by transport. TCP and TLS frame each message with its length and reconnect when
the server has closed the connection (a restarted daemon), so a message is only counted as delivered once
written to a live connection. UDP has no acknowledgement: while the receiver is down, messages are lost
(the kernel's "port unreachable" surfaces only on a later send) — use TCP or TLS where loss matters.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from datetime import UTC, datetime

from kubeguard.findings.formats.summary import summarize
from kubeguard.sinks.delivery import DeliveryError, Item, Renderer, SinkEnv
from kubeguard.sinks.options import SyslogOptions

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}
SEVERITIES = {"Critical": 2, "High": 3, "Medium": 4, "Low": 5}
SD_ID = "kubeguard@32473"
NILVALUE = "-"


def _header_token(text: str, limit: int) -> str:
    """PRINTUSASCII without spaces, as RFC 5424 header fields require; NILVALUE when empty."""
    cleaned = "".join(ch for ch in text if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or NILVALUE


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(item: Item, renderer: Renderer, *, facility: int, app_name: str, hostname: str) -> bytes:
    summary = summarize(item.finding)
    priority = facility * 8 + SEVERITIES.get(summary.severity_label, 5)
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params = {
        "id": summary.id,
        "type": summary.type,
        "severity": f"{summary.severity:g}",
        "cluster": summary.cluster,
        "archived": "true" if summary.archived else "false",
    }
    if item.link:
        params["url"] = item.link
    data = " ".join(f'{key}="{_sd_value(value)}"' for key, value in params.items())
    body = renderer.body(item).decode().replace("\n", " ")
    header = (
        f"<{priority}>1 {timestamp} {_header_token(hostname, 255)} {_header_token(app_name, 48)} "
        f"{os.getpid()} {'ARCHIVED' if summary.archived else 'FINDING'}"
    )
    return f"{header} [{SD_ID} {data}] {body}".encode()


class SyslogDestination:
    batch_size = 50

    def __init__(self, options: SyslogOptions, env: SinkEnv) -> None:
        if options.facility not in FACILITIES:
            raise ValueError(f"unknown syslog facility {options.facility!r}")
        self.name = options.name or f"syslog:{options.protocol}://{options.host}:{options.port}"
        self.options = options
        self.renderer = env.renderer
        self.facility = FACILITIES[options.facility]
        self.hostname = socket.gethostname()
        self._socket: socket.socket | None = None

    def deliver(self, items: list[Item]) -> None:
        messages = [
            syslog_message(item, self.renderer, facility=self.facility, app_name=self.options.app_name,
                           hostname=self.hostname)
            for item in items
        ]
        try:
            if self.options.protocol == "udp":
                self._send_udp(messages)
            else:
                self._send_stream(messages)
        except OSError as error:
            self.close()
            where = f"{self.options.protocol}://{self.options.host}:{self.options.port}"
            raise DeliveryError(f"{where}: {error}") from error

    def _send_udp(self, messages: list[bytes]) -> None:
        sock = self._socket or self._open_udp()
        for message in messages:
            sock.send(message[: self.options.max_udp_bytes])

    def _send_stream(self, messages: list[bytes]) -> None:
        sock = self._socket if self._socket is not None and self._alive(self._socket) else self._reconnect()
        sock.sendall(b"".join(str(len(m)).encode() + b" " + m for m in messages))

    def _open_udp(self) -> socket.socket:
        family = socket.getaddrinfo(self.options.host, self.options.port, type=socket.SOCK_DGRAM)[0][0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.connect((self.options.host, self.options.port))
        self._socket = sock
        return sock

    def _reconnect(self) -> socket.socket:
        self.close()
        sock = socket.create_connection((self.options.host, self.options.port), timeout=self.options.timeout_seconds)
        if self.options.protocol == "tls":
            context = ssl.create_default_context(cafile=self.options.ca_file or None)
            if self.options.cert_file:
                context.load_cert_chain(self.options.cert_file, self.options.key_file or None)
            sock = context.wrap_socket(sock, server_hostname=self.options.host)
        self._socket = sock
        return sock

    @staticmethod
    def _alive(sock: socket.socket) -> bool:
        """False when the server has closed its end (readable with nothing to read) or reset it."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return True
            if isinstance(sock, ssl.SSLSocket):
                return False  # a syslog server sends nothing: readable means close_notify or a reset
            return bool(sock.recv(1, socket.MSG_PEEK))
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
