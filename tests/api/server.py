"""Run ``kubeguard serve`` as a real subprocess on a free loopback port, for tests that speak HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LAB_EVENTLISTS = Path(__file__).resolve().parents[1] / "data" / "lab-scenario" / "webhook-eventlists.jsonl.gz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortTaken(RuntimeError):
    """The port picked for a server was taken by another before the server bound it."""


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (True where /proc cannot tell)."""
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True
    wanted = f"0100007F:{port:04X}"
    inodes = {fields[9] for fields in (row.split() for row in table) if fields[1] == wanted and fields[3] == "0A"}
    for fd in fds:
        try:
            if os.readlink(fd) in {f"socket:[{inode}]" for inode in inodes}:
                return True
        except OSError:
            continue
    return False


class ChildProcess:
    """A kubeguard process a test started: killed without warning, or stopped politely."""

    process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing — the crash the spool must survive."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Server(ChildProcess):
    #: How the server is spoken to; a subclass that starts it over TLS says ``https`` and how to verify it.
    scheme = "http"

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        config: str = "",
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.db_url = db_url
        self.args = [*(args or []), *(extra_args or [])]
        self.workdir = workdir
        self.config_path = workdir / "kubeguard.toml"
        self.config_path.write_text(config)
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        """Start on a free port; again on another when the picked one was taken before the server bound it."""
        for _ in range(3):
            try:
                return self._start_once()
            except PortTaken:
                continue
        return self._start_once()

    def _healthy(self) -> bool:
        """Whatever listens on the port answers /healthz."""
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    def _start_once(self) -> Server:
        self.port = free_port()
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubeguard.serve",
                "--port",
                str(self.port),
                "--db",
                self.db_url,
                "--config",
                str(self.config_path),
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = (self.workdir / "server.log").read_text()[-3000:]
                if "address already in use" in output.lower():
                    raise PortTaken(self.port)
                raise RuntimeError(f"server exited: {output}")
            try:
                # The port was free when picked, but another test's server may have taken it since: the
                # answer counts only once this process is the one listening (a loaded machine saw a test
                # post to its neighbour's server and count the neighbour's events).
                if self._healthy() and listens(self.process.pid, self.port):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not come up over {self.scheme}")

    def wait_drained(self, timeout: float = 60, headers: dict[str, str] | None = None) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            totals = httpx.get(f"{self.url}/api/spool", headers=headers or {}).json()
            if totals["batches_pending"] == 0:
                return totals
            time.sleep(0.1)
        raise AssertionError(f"spool not drained: {totals}")
