"""Values no store can keep as given (NUL), and two processes migrating one fresh store, on both dialects."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import create_engine, select

from kubeguard.store import findings, schema
from kubeguard.store.database import MIGRATIONS
from kubeguard.store.state import SqlState
from store.databases import DIALECTS, database_url
from store.test_store import make_finding


def test_nul_in_ids_keys_and_clusters_neither_fails_nor_loses_the_write(engine):
    state = SqlState(engine)
    assert state.first_seen("images", "evil\x00image:1") is True
    assert state.first_seen("images", "evil\x00image:1") is False
    assert SqlState(engine).seen("images", "evil\x00image:1")
    finding = make_finding()
    finding["resource"]["eksClusterDetails"]["name"] = "prod\x00x"
    finding["resource"]["kubernetesDetails"] = {"kubernetesWorkloadDetails": {"name": "nul\x00pod"}}
    with engine.begin() as conn:
        assert findings.upsert(conn, finding).created
    with engine.connect() as conn:
        assert findings.get_many(conn, "d" * 32, ["no\x00such"]) == {}
        stored = findings.get_many(conn, "d" * 32, ["a" * 32])["a" * 32]
    assert stored["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["name"] == "nul\x00pod"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_two_processes_migrating_one_fresh_store_agree(dialect, tmp_path):
    code = "import sys; from kubeguard.store.database import open_engine; open_engine(sys.argv[1])"
    with database_url(dialect, tmp_path) as url:
        processes = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE) for _ in range(4)]
        for process in processes:
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err.decode()
        engine = create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
        engine.dispose()
    assert sorted(versions) == [number for number, _ in MIGRATIONS]
