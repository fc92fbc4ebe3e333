"""Which failures count against a batch: an unreachable store never does, however it is wrapped."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, OperationalError

from kubeguard.batch.processor import StateReadFailed
from kubeguard.bus.processing import UnreadableBatch
from kubeguard.bus.worker import _transient


def _wrapped(cause: BaseException) -> StateReadFailed:
    try:
        raise StateReadFailed("detector state could not be read") from cause
    except StateReadFailed as exc:
        return exc


def test_store_outages_are_transient_even_when_wrapped():
    outage = OperationalError("SELECT 1", {}, ConnectionResetError("server closed the connection"))
    assert _transient(outage)
    assert _transient(_wrapped(outage))
    assert _transient(TimeoutError())


def test_detection_errors_count_against_the_batch():
    assert not _transient(UnreadableBatch("no audit event could be read"))
    assert not _transient(_wrapped(KeyError("spec")))
    assert not _transient(IntegrityError("INSERT", {}, Exception("duplicate key")))
