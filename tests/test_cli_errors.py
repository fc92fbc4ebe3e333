"""Every error a user can make on the command line is one line on stderr and a documented exit code.

Each case runs the real ``kubeguard`` process: 2 for a usage error (a file, option or value that is wrong),
1 for a runtime failure (a service that cannot be reached, nothing readable in the input). ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kubeguard.audit.decode import FORMATS
from kubeguard.cli.intel import DEFAULT_TIMEOUT as CLI_TIMEOUT
from kubeguard.cli.scan import INPUT_FORMATS
from kubeguard.intel.sources import DEFAULT_TIMEOUT

LAB = Path(__file__).resolve().parent / "data" / "lab-scenario" / "audit.jsonl.gz"


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_DATA_HOME": str(home / "data"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kubeguard.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cases(tmp: Path) -> list[tuple[list[str], int, str]]:
    corrupt = tmp / "corrupt-state.json"
    corrupt.write_text("{not json")
    (tmp / "a-directory").mkdir()
    native = tmp / "native.jsonl"
    native.write_text('{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete",'
                      '"verb":"get","requestURI":"/api","user":{"username":"u"}}\n')
    junk = tmp / "junk.txt"
    junk.write_text("this is not an audit log\nnor is this\n")
    scan = ["scan", "--no-default-feeds", "-q"]
    return [
        ([*scan, str(LAB), "--state", str(corrupt)], 2, "not a kubeguard state file"),
        ([*scan, str(LAB), "--state", str(tmp / "a-directory")], 2, "is a directory"),
        ([*scan, str(LAB), "-o", str(tmp / "missing" / "out.json")], 2, "does not exist"),
        ([*scan, str(tmp / "nope.jsonl")], 2, "nope.jsonl"),
        ([*scan, str(junk)], 1, "no audit event could be read"),
        ([*scan, "--input-format", "gke", str(native)], 1, "no audit event could be read"),
        ([*scan, "--input-format", "bogus", str(native)], 2, "--input-format"),
        ([*scan, "--format", "yaml", str(native)], 2, "--format"),
        ([*scan, "--fail-on", "bogus", str(native)], 2, "--fail-on 'bogus'"),
        ([*scan, "--min-severity", "extreme", str(native)], 2, "--min-severity"),
        ([*scan, "--threat-list", "x.txt:FOO", str(native)], 2, "unknown list format 'FOO'"),
        (["findings", "list", "--url", f"http://127.0.0.1:{closed_port()}"], 1, "cannot reach"),
        (["findings", "show", "x", "--db", str(tmp / "typo.db")], 2, "no database there"),
        (["findings", "list", "--db", str(tmp / "typo.db")], 2, "--create"),
    ]


def test_every_error_is_one_line_with_its_exit_code(tmp_path):
    for args, code, needle in _cases(tmp_path):
        result = run(*args, home=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code, (args, result.stderr)
        assert len(lines) == 1, (args, result.stderr)
        assert needle in lines[0], (args, lines[0])
        assert lines[0].startswith("kubeguard "), lines[0]
    assert not (tmp_path / "typo.db").exists()


def test_debug_adds_the_traceback(tmp_path):
    result = run("--debug", "findings", "list", "--url", f"http://127.0.0.1:{closed_port()}", home=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "cannot reach" in result.stderr


def test_allow_empty_accepts_an_input_with_no_events(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run("scan", "--no-default-feeds", "-q", str(empty), home=tmp_path).returncode == 1
    assert run("scan", "--no-default-feeds", "-q", "--allow-empty", str(empty), home=tmp_path).returncode == 0


def test_findings_db_is_created_only_when_asked(tmp_path):
    database = tmp_path / "new.db"
    result = run("findings", "list", "--db", str(database), home=tmp_path)
    assert result.returncode == 2 and not database.exists()
    created = run("findings", "list", "--db", str(database), "--create", home=tmp_path)
    assert created.returncode == 0, created.stderr
    assert database.exists()


def test_unknown_finding_ids_are_errors(tmp_path):
    database = tmp_path / "store.db"
    assert run("findings", "list", "--db", str(database), "--create", home=tmp_path).returncode == 0
    for command in ("show", "archive"):
        result = run("findings", command, "0123456789abcdef", "--db", str(database), home=tmp_path)
        assert result.returncode == 1
        assert "no finding with id 0123456789abcdef" in result.stderr
        assert "archived" not in result.stdout


def test_version_and_help_need_no_service(tmp_path):
    version = run("--version", home=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("kubeguard ")
    assert run("--help", home=tmp_path).returncode == 0


@pytest.mark.parametrize(("cli_value", "real_value"), [(tuple(INPUT_FORMATS), tuple(FORMATS)),
                                                       (CLI_TIMEOUT, DEFAULT_TIMEOUT)])
def test_cli_copies_of_constants_agree_with_their_modules(cli_value, real_value):
    assert cli_value == real_value
