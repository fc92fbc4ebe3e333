"""Correlation in the service: after each batch's findings are stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from store.databases import DIALECTS, database_url

from kubeguard.correlate.sequences import SEQUENCE_TYPE
from kubeguard.correlate.stored import correlate_stored
from kubeguard.store import filters
from kubeguard.store import findings as store
from kubeguard.store.database import open_engine
from kubeguard.store.recorder import FindingRecorder


@pytest.fixture(params=DIALECTS)
def engine(request, tmp_path) -> Iterator:
    with database_url(request.param, tmp_path) as url:
        engine = open_engine(url)
        yield engine
        engine.dispose()


def occurrences(intrusion) -> list[dict]:
    """The scan's findings as the pipeline emits them: no sequence, no association yet, in event order."""
    plain = [{k: v for k, v in f.items() if k != "associatedAttackSequenceArn"}
             for f in intrusion.findings if f["type"] != SEQUENCE_TYPE]
    return sorted(plain, key=lambda f: f["service"]["eventFirstSeen"])


def stored(engine) -> list[dict]:
    with engine.connect() as conn:
        return list(store.scan(conn, None, {}))


def test_batches_give_the_same_single_sequence_as_scan_and_a_replay_changes_nothing(engine, intrusion):
    recorder = FindingRecorder(engine, correlate=correlate_stored)
    found = occurrences(intrusion)
    batches = [found[i:i + 3] for i in range(0, len(found), 3)]
    for batch in batches:
        recorder.record(batch)
    (expected,) = [f for f in intrusion.findings if f["type"] == SEQUENCE_TYPE]
    (sequence,) = [f for f in stored(engine) if f["type"] == SEQUENCE_TYPE]
    assert sequence["id"] == expected["id"]
    signals = sequence["service"]["detection"]["sequence"]["signals"]
    assert {s["uid"] for s in signals} == {s["uid"] for s in expected["service"]["detection"]["sequence"]["signals"]}
    members = [f for f in stored(engine) if f.get("associatedAttackSequenceArn") == sequence["arn"]]
    assert len(members) == len([s for s in signals if s["type"] == "FINDING"])
    recorder.record(batches[-1])
    (again,) = [f for f in stored(engine) if f["type"] == SEQUENCE_TYPE]
    assert again["id"] == sequence["id"]
    assert len(again["service"]["detection"]["sequence"]["signals"]) == len(signals)


def test_a_suppressed_member_is_left_out_of_the_sequence(engine, intrusion):
    detector_id = intrusion.findings[0]["service"]["detectorId"]
    rule = filters.FilterRecord(detector_id, "hide-privileged", "", "ARCHIVE", 1,
                                {"type": {"eq": ["PrivilegeEscalation:Kubernetes/PrivilegedContainer"]}}, {}, 1, 0, 0)
    with engine.begin() as conn:
        filters.create(conn, rule)
    recorder = FindingRecorder(engine, correlate=correlate_stored)
    recorder.record(occurrences(intrusion))
    (sequence,) = [f for f in stored(engine) if f["type"] == SEQUENCE_TYPE]
    names = {s["name"] for s in sequence["service"]["detection"]["sequence"]["signals"]}
    assert "PrivilegeEscalation:Kubernetes/PrivilegedContainer" not in names
    assert "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer" in names
