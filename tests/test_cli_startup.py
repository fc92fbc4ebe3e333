"""Start-up stays small: ``--help`` and a file scan do not import what they do not use (issue 14).

A timing would be flaky on a shared machine (``benchmarks/startup.py`` measures it); the modules a command
leaves unimported are not. Each case runs the command in a fresh interpreter and lists the heavy packages
that ended up in ``sys.modules``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.audit.test_decode import EVENT

#: Packages a file scan or the help never needs, each costing tens to hundreds of milliseconds to import.
HEAVY = ("pydantic", "fastapi", "starlette", "sqlalchemy", "boto3", "botocore", "httpx", "uvicorn",
         "rich.markdown", "rich.progress", "markdown_it", "defusedxml", "nats", "psycopg")

PROBE = """
import sys
from kubeguard.cli import app
try:
    app(sys.argv[1:])
except SystemExit as stop:
    if stop.code not in (0, None):
        raise
heavy = {heavy!r}
print("heavy:" + ",".join(sorted(name for name in heavy if name in sys.modules)))
"""


def _loaded_heavy(*argv: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
                         capture_output=True, text=True, check=True, timeout=120)
    [report] = [line for line in run.stdout.splitlines() if line.startswith("heavy:")]
    return [name for name in report.removeprefix("heavy:").split(",") if name]


def test_help_imports_no_heavy_package():
    assert _loaded_heavy("--help") == []


@pytest.mark.parametrize("output_format", ["jsonl", "json"])
def test_scan_of_a_file_imports_no_heavy_package(tmp_path: Path, output_format: str):
    log = tmp_path / "one.jsonl"
    log.write_bytes(orjson.dumps(EVENT) + b"\n")
    out = tmp_path / "findings.out"
    loaded = _loaded_heavy("scan", str(log), "--format", output_format, "--output", str(out), "--quiet",
                           "--no-default-feeds")
    assert out.exists()
    assert loaded == []
