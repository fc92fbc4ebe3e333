"""Start-up stays small: ``--help`` and a file scan do not import what they do not use (issue 14).

A timing would be flaky on a shared machine (``benchmarks/startup.py`` measures it); the modules a command
leaves unimported are not. Each case runs the command through the real entry point (``kubeguard.cli.main``,
which builds only the command it runs) in a fresh interpreter and lists the heavy modules that ended up in
``sys.modules``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.audit.test_decode import EVENT

#: Packages a file scan or the help never needs, each costing tens to hundreds of milliseconds to import
#: (pySigma with pyparsing and PyYAML alone took 0.15 s; it is needed only when Sigma rules are named).
HEAVY = ("pydantic", "fastapi", "starlette", "sqlalchemy", "boto3", "botocore", "httpx", "uvicorn",
         "rich.markdown", "rich.progress", "markdown_it", "defusedxml", "nats", "psycopg",
         "sigma", "pyparsing", "yaml")
#: What a scan of a file needs none of: the other commands' modules, and the correlator when nothing was found.
NOT_FOR_SCAN = ("kubeguard.cli.findings", "kubeguard.cli.intel", "kubeguard.cli.investigate", "kubeguard.cli.rules",
                "kubeguard.cli.serve", "kubeguard.cli.simulate", "kubeguard.cli.worker",
                "kubeguard.detectors.rules.load", "kubeguard.correlate.sequences")

PROBE = """
import gc, sys
import kubeguard.cli
sys.argv = ["kubeguard", *sys.argv[1:]]
try:
    kubeguard.cli.main()
except SystemExit as stop:
    if stop.code not in (0, None):
        raise
heavy = {heavy!r}
print("heavy:" + ",".join(sorted(name for name in heavy if name in sys.modules)))
print(f"frozen:{{gc.get_freeze_count()}}")
"""


def _probe(*argv: str, heavy: tuple[str, ...] = HEAVY) -> dict[str, str]:
    """What the probe reports after running ``kubeguard ARGV`` in a process of its own (``heavy``, ``frozen``)."""
    run = subprocess.run([sys.executable, "-c", PROBE.format(heavy=heavy), *argv],
                         capture_output=True, text=True, check=True, timeout=120)
    return dict(line.split(":", 1) for line in run.stdout.splitlines() if line.startswith(("heavy:", "frozen:")))


def _loaded_heavy(*argv: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return [name for name in _probe(*argv, heavy=heavy)["heavy"].split(",") if name]


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


def _quiet_event(tmp_path: Path) -> Path:
    """A one-event log on which no detector fires (a node reading its own lease)."""
    log = tmp_path / "one.jsonl"
    event = {**EVENT, "verb": "get", "requestURI": "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
             "user": {"username": "system:node:n1", "groups": ["system:nodes", "system:authenticated"]},
             "objectRef": {"resource": "leases", "namespace": "kube-node-lease", "name": "n1",
                           "apiGroup": "coordination.k8s.io", "apiVersion": "v1"}}
    log.write_bytes(orjson.dumps(event) + b"\n")
    return log


def test_scan_builds_only_its_own_command(tmp_path: Path):
    out = tmp_path / "findings.jsonl"
    loaded = _loaded_heavy("--debug", "scan", str(_quiet_event(tmp_path)), "--format", "jsonl", "--output", str(out),
                           "--quiet", heavy=NOT_FOR_SCAN)
    assert out.read_bytes() == b""  # nothing found, so correlation had nothing to do
    assert loaded == []


def test_help_still_lists_every_command():
    from kubeguard.cli import COMMANDS

    run = subprocess.run([sys.executable, "-m", "kubeguard.cli", "--help"], capture_output=True, text=True,
                         check=True, timeout=120)
    listed = {line.split()[0] for line in run.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


def test_scan_keeping_history_imports_no_web_framework(tmp_path: Path):
    out = tmp_path / "findings.jsonl"
    db = tmp_path / "history.db"
    loaded = _loaded_heavy("scan", str(_quiet_event(tmp_path)), "--format", "jsonl", "--output", str(out),
                           "--quiet", "--no-default-feeds", "--db", f"sqlite:///{db}",
                           heavy=("fastapi", "starlette", "pydantic", "uvicorn", "sigma", "yaml"))
    assert db.exists()
    assert loaded == []


def test_scan_summary_to_a_pipe_is_plain_text_without_rich(tmp_path: Path):
    """Not on a terminal, the summary is written plainly: no rich import, no markup, no wrapping."""
    log = tmp_path / "one.jsonl"
    log.write_bytes(orjson.dumps(EVENT) + b"\n")
    probe = PROBE.format(heavy=("rich", "rich.console")).replace(
        'print("heavy:"', 'sys.stderr.flush(); print("heavy:"')
    run = subprocess.run([sys.executable, "-c", probe, "scan", str(log), "--format", "jsonl", "--output",
                          str(tmp_path / "out.jsonl"), "--no-default-feeds"],
                         capture_output=True, text=True, check=True, timeout=120)
    [report] = [line for line in run.stdout.splitlines() if line.startswith("heavy:")]
    assert report == "heavy:"
    summary = [line for line in run.stderr.splitlines() if "events read" in line]
    assert len(summary) == 1 and "records rejected" in summary[0] and "[" not in summary[0]


@pytest.mark.parametrize(("command", "frozen"), [("scan", True), ("--help", False)])
def test_a_finished_scan_leaves_nothing_for_the_collection_at_exit(tmp_path: Path, command: str, frozen: bool):
    """The console script freezes what a scan leaves alive, so the interpreter's last collection skips it;
    other commands exit as Python does."""
    argv = [command, str(_quiet_event(tmp_path)), "--quiet"] if command == "scan" else [command]
    assert (int(_probe(*argv)["frozen"]) > 1000) is frozen
