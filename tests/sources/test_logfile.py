"""The audit log file source against real files rotated every way the API server and logrotate do.

Lines are real audit events from the lab log. Every test checks the exact list of (auditID, stage)
spooled: each line once, in order, nothing else.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from kubeguard.sources import logfile
from kubeguard.sources.logfile import LogFileSource
from kubeguard.sources.spec import parse_source
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store.database import open_engine
from kubeguard.store.spool import Spool
from sources.spooled import spooled_keys


@pytest.fixture
def engine(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'kg.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def audit_log(tmp_path) -> Path:
    directory = tmp_path / "log"
    directory.mkdir()
    return directory / "audit.log"


def _keys(lines: list[str]) -> list[tuple[str, str]]:
    return [(json.loads(line)["auditID"], json.loads(line)["stage"]) for line in lines]


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _source(engine, path: Path) -> LogFileSource:
    spec = parse_source(f"file:{path},cluster=lab,poll=0.05s")
    return LogFileSource(spec, SpoolWriter(engine, Spool(engine)), engine)


def _drain(source: LogFileSource) -> None:
    """Step until the source has nothing more to read (rotations included)."""
    if source.current is None:
        source.resume()
    idle = 0
    while idle < 2:
        idle = 0 if source.step() else idle + 1


def test_reads_appended_lines_and_counts_junk(engine, audit_log, lab_lines):
    _append(audit_log, lab_lines[:100])
    _append(audit_log, ["E1130 klog line, not an event", '{"kind":"Event","auditID":"x","user":{"na'])
    source = _source(engine, audit_log)
    _drain(source)
    with audit_log.open("a") as handle:
        handle.write(lab_lines[100] + "\n" + lab_lines[101][:50])  # the last line is half written
    _drain(source)
    assert spooled_keys(engine) == _keys(lab_lines[:101])
    assert source.health.snapshot()["rejects"] == {"not_json": 2}
    with audit_log.open("a") as handle:
        handle.write(lab_lines[101][50:] + "\n")
    _drain(source)
    assert spooled_keys(engine) == _keys(lab_lines[:102])


def test_api_server_maxsize_rotation_and_logrotate_create(engine, audit_log, lab_lines):
    source = _source(engine, audit_log)
    _append(audit_log, lab_lines[:50])
    _drain(source)
    # The API server: lines land in the old file, it is renamed to audit-<time>.log, a new file begins.
    _append(audit_log, lab_lines[50:80])
    audit_log.rename(audit_log.with_name("audit-2026-11-30T14-00-00.000.log"))
    _append(audit_log, lab_lines[80:120])
    _drain(source)
    # logrotate's default: rename to audit.log.1 and create.
    _append(audit_log, lab_lines[120:130])
    audit_log.rename(audit_log.with_name("audit.log.1"))
    _append(audit_log, lab_lines[130:150])
    _drain(source)
    assert spooled_keys(engine) == _keys(lab_lines[:150])


def test_copytruncate_reads_the_rest_from_the_copy(engine, audit_log, lab_lines):
    source = _source(engine, audit_log)
    _append(audit_log, lab_lines[:40])
    _drain(source)
    _append(audit_log, lab_lines[40:60])  # not read yet when logrotate copies and truncates
    shutil.copyfile(audit_log, audit_log.with_name("audit.log.1"))
    with audit_log.open("r+") as handle:
        handle.truncate(0)
    _append(audit_log, lab_lines[60:200])  # the truncated file grows past the old offset again
    _drain(source)
    assert spooled_keys(engine) == _keys(lab_lines[:200])


def test_restart_resumes_at_device_inode_offset_even_after_rotation(engine, audit_log, lab_lines, monkeypatch):
    monkeypatch.setattr(logfile, "CHUNK_BYTES", 16 * 1024)
    _append(audit_log, lab_lines[:120])
    first = _source(engine, audit_log)
    first.resume()
    first.step()  # one chunk only, then the process dies
    read = len(spooled_keys(engine))
    assert 0 < read < 120
    audit_log.rename(audit_log.with_name("audit-2026-11-30T15-00-00.000.log"))
    _append(audit_log, lab_lines[120:160])

    second = _source(engine, audit_log)
    _drain(second)
    assert spooled_keys(engine) == _keys(lab_lines[:160])
    third = _source(engine, audit_log)
    _drain(third)
    assert spooled_keys(engine) == _keys(lab_lines[:160])


def test_rotated_every_way_while_being_read(engine, audit_log, lab_lines, monkeypatch):
    monkeypatch.setattr(logfile, "CHUNK_BYTES", 32 * 1024)
    audit_log.touch()
    source = _source(engine, audit_log)
    source.start()
    deadline = time.monotonic() + 10
    while source.current is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the first start reads the file there is then; rotations come after
    written: list[str] = []

    def writer() -> None:
        methods = ("maxsize", "create", "copytruncate")
        for number, start in enumerate(range(0, len(lab_lines), 130)):
            chunk = lab_lines[start : start + 130]
            for line in chunk:
                _append(audit_log, [line])
                written.append(line)
            method = methods[number % 3]
            backup = audit_log.with_name(f"audit-{number}.log")
            if method == "copytruncate":
                shutil.copyfile(audit_log, backup)
                with audit_log.open("r+") as handle:
                    handle.truncate(0)
            else:
                audit_log.rename(backup)
                if method == "create":
                    audit_log.touch()
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(60)
    try:
        deadline = time.monotonic() + 30
        while len(spooled_keys(engine)) < len(lab_lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # anything read twice would show up now
    finally:
        source.stop()
    assert written == lab_lines
    expected, got = _keys(lab_lines), spooled_keys(engine)
    where = [expected.index(k) if k in expected else -1 for k in got]
    assert got == expected, [(a, b) for a, b in zip(where, where[1:], strict=False) if b != a + 1][:5]
    assert source.health.snapshot()["errors"] == 0
