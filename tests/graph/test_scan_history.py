"""``kubeguard scan --db``: the scan's counted events and findings land in a store the console can open."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from kubeguard.cli import app
from kubeguard.graph import kinds, queries
from kubeguard.graph import schema as tables
from kubeguard.store import schema as store_tables
from kubeguard.store.database import open_engine

LAB_LOG = Path(__file__).resolve().parents[2] / "examples" / "lab-audit.jsonl.gz"


def test_scan_with_db_keeps_every_counted_event_and_links_its_findings(tmp_path):
    database = tmp_path / "history.db"
    result = CliRunner().invoke(app, ["scan", str(LAB_LOG), "--db", str(database), "-f", "json", "-q"])
    assert result.exit_code == 0, result.output
    from kubeguard.config import Settings
    from kubeguard.scan import run_scan

    expected = run_scan([str(LAB_LOG)], Settings(), pipeline_options={})
    engine = open_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        counted = conn.execute(select(func.sum(tables.activity.c["count"]))).scalar()
        stored = conn.execute(select(func.count()).select_from(store_tables.findings)).scalar()
        for finding in expected.findings:
            user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
            assert finding["id"] in queries.related_finding_ids(conn, kinds.SUBJECT, user)
    engine.dispose()
    assert counted == expected.stats.counted
    assert stored == len(expected.findings)


def test_flushes_in_the_middle_of_a_scan_count_every_event_once(tmp_path, monkeypatch):
    """A scan that flushes every few events stores the same roll-ups as one that flushes once at the end."""
    from kubeguard.config import Settings
    from kubeguard.graph import history
    from kubeguard.scan import run_scan

    table = tables.activity
    dims = [table.c[name] for name in ("hour_ms", "subject", "ip", "user_agent", "verb", "resource", "namespace",
                                       "name", "uri", "outcome")]
    stored, flushes, flush_counts = {}, [], {}
    real_flush = history.ActivityRecorder.flush

    def counting_flush(recorder, conn):
        flushes.append(recorder.pending)
        real_flush(recorder, conn)

    monkeypatch.setattr(history.ActivityRecorder, "flush", counting_flush)
    for name, check_every, max_pending in (("once", 10_000, 50_000), ("often", 50, 20)):
        flushes.clear()
        monkeypatch.setattr(history, "CHECK_EVERY", check_every)
        monkeypatch.setattr(history, "MAX_PENDING", max_pending)
        url = f"sqlite:///{tmp_path / name}.db"
        result = run_scan([str(LAB_LOG)], Settings(), pipeline_options={}, history_url=url)
        engine = open_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(select(*dims, func.sum(table.c["count"])).group_by(*dims)).all()
            stored[name] = {tuple(row[:-1]): row[-1] for row in rows}
            entities = conn.execute(select(func.sum(tables.entities.c.events)).where(
                tables.entities.c.kind == kinds.CLUSTER)).scalar()
        engine.dispose()
        assert sum(stored[name].values()) == result.stats.counted, name
        assert entities == result.stats.counted, name
        flush_counts[name] = len(flushes)
    assert flush_counts["once"] == 1 and flush_counts["often"] > 10
    assert stored["often"] == stored["once"]
