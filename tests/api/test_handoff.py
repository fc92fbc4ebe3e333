"""The webhook's decoded batches wait for the drainer in a bounded cache that never outlives its use."""

from __future__ import annotations

from kubeguard.api.ingest.handoff import DecodedHandoff
from kubeguard.audit.event import AuditEvent


def events(count: int) -> list[AuditEvent]:
    return [AuditEvent(auditID=f"a{i}", verb="get", requestURI="/api") for i in range(count)]


def test_a_batch_is_taken_once_for_its_own_cluster_only():
    handoff = DecodedHandoff(max_events=100)
    batch = events(3)
    assert handoff.put(1, "prod", batch, 2) and handoff.holds(1)
    taken = handoff.take(1, "prod")
    assert taken is not None and taken.events is batch and taken.rejected == 2
    assert handoff.take(1, "prod") is None, "taken once"
    assert handoff.put(2, "prod", events(3), 0)
    assert handoff.take(2, "staging") is None, "the spool row names another cluster: decode it instead"
    assert (handoff.taken, handoff.missed, len(handoff)) == (1, 2, 0)


def test_the_handoff_is_bounded_in_events_and_frees_room_as_batches_are_taken():
    handoff = DecodedHandoff(max_events=10)
    assert handoff.put(1, "c", events(6), 0)
    assert not handoff.put(2, "c", events(6), 0), "over the bound: the drainer decodes this one"
    assert handoff.put(3, "c", events(4), 0)
    assert handoff.take(1, "c") is not None
    assert handoff.put(4, "c", events(6), 0)
    assert handoff.take(2, "c") is None


def test_batches_the_drainer_passed_are_dropped_and_never_held_again():
    handoff = DecodedHandoff(max_events=100)
    for spool_id in (5, 6, 7):
        assert handoff.put(spool_id, "c", events(10), 0)
    assert handoff.take(7, "c") is not None, "a batch another process stored left 5 and 6 behind"
    assert len(handoff) == 0
    assert not handoff.put(6, "c", events(10), 0), "committed before the drainer passed it: nobody will take it"
    assert handoff.put(8, "c", events(100), 0), "the room of the dropped batches is free again"
