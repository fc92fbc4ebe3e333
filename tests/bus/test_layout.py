"""Subjects, partitions, batch digests and the cutting of large batches: pure functions every process shares."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeguard.audit.decode import decode_bytes
from kubeguard.bus import layout
from kubeguard.bus.chunking import HEADER_ROOM, BatchTooLarge, split_batch


def test_a_cluster_always_lands_in_the_same_partition_and_clusters_spread():
    names = [f"cluster-{n}" for n in range(400)]
    first = [layout.partition_of(name, 16) for name in names]
    assert first == [layout.partition_of(name, 16) for name in names]
    assert set(first) == set(range(16))
    assert max(first.count(p) for p in range(16)) < 3 * 400 / 16


def test_subject_names_partition_and_cluster_token():
    subject = layout.audit_subject("prod.eu-west-1", 16)
    prefix, partition, token = subject.rsplit(".", 2)
    assert prefix == layout.AUDIT_PREFIX
    assert int(partition) == layout.partition_of("prod.eu-west-1", 16)
    assert token == "prod_eu-west-1"
    assert layout.dead_subject("a.b") == "kubeguard.dead.a_b"


def test_batch_key_is_a_digest_of_cluster_and_body():
    assert layout.batch_key("a", b"x") == layout.batch_key("a", b"x")
    assert layout.batch_key("a", b"x") != layout.batch_key("b", b"x")
    assert layout.batch_key("a", b"x") != layout.batch_key("a", b"y")
    assert layout.batch_key("ab", b"c") != layout.batch_key("a", b"bc")


def _event(n: int, padding: int) -> dict:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"id-{n}",
        "stage": "ResponseComplete",
        "verb": "get",
        "requestURI": f"/api/v1/namespaces/default/pods/p{n}?x={'a' * padding}",
        "user": {"username": "alice"},
        "sourceIPs": ["10.0.0.1"],
        "stageTimestamp": "2026-01-05T00:00:00.000000Z",
    }


def _audit_ids(body: bytes) -> list[str]:
    return [event.auditID for event in decode_bytes(body, source="test", cluster="c").events]


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=40),
    shape=st.sampled_from(["eventlist", "array", "lines"]),
)
def test_a_large_batch_is_cut_into_pieces_that_fit_and_keep_every_event_in_order(sizes, shape):
    events = [_event(n, size) for n, size in enumerate(sizes)]
    if shape == "eventlist":
        body = msgspec.json.encode({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events})
    elif shape == "array":
        body = msgspec.json.encode(events)
    else:
        body = b"\n".join(msgspec.json.encode(event) for event in events)
    limit = HEADER_ROOM + 8000
    pieces = split_batch(body, limit, len(events))
    assert pieces == split_batch(body, limit, len(events))  # a re-sent batch is cut the same way
    assert all(len(piece) <= limit - HEADER_ROOM for piece, _ in pieces)
    assert sum(count for _, count in pieces) == len(events)
    assert [i for piece, _ in pieces for i in _audit_ids(piece)] == [f"id-{n}" for n in range(len(events))]
    if len(body) <= limit - HEADER_ROOM:
        assert pieces == [(body, len(events))]


def test_one_event_over_the_limit_is_refused_with_the_reason():
    body = msgspec.json.encode([_event(0, 10), _event(1, 20_000)])
    with pytest.raises(BatchTooLarge, match="max_payload"):
        split_batch(body, HEADER_ROOM + 8000, 2)
    with pytest.raises(BatchTooLarge, match="not a list of events"):
        split_batch(msgspec.json.encode(_event(0, 20_000)), HEADER_ROOM + 8000, 1)
