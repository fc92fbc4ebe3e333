"""Scale-out refuses what cannot work, with one line that says what to change."""

from __future__ import annotations

import pytest
from api.server import free_port
from typer.testing import CliRunner

from kubeguard.cli import app


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_bus_with_sqlite_is_refused(command, tmp_path):
    result = CliRunner().invoke(app, [command, "--bus", "nats://127.0.0.1:4222", "--db", str(tmp_path / "k.db")])
    assert result.exit_code == 2
    assert "--bus needs a shared PostgreSQL store" in result.output


def test_bus_url_must_be_nats(tmp_path):
    result = CliRunner().invoke(app, ["worker", "--bus", "http://127.0.0.1:4222", "--db", "postgresql://x@h/db"])
    assert result.exit_code == 2
    assert "must be a NATS URL" in result.output


def test_unreachable_nats_is_a_clear_runtime_error(pg_url):
    url = f"nats://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["worker", "--bus", url, "--db", pg_url])
    assert result.exit_code == 1
    assert f"cannot connect to NATS at {url}" in result.output
