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
