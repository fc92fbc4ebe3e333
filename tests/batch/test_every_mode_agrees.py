"""Every mode agrees: the same events give the same findings and ``service.count`` whatever the batching.

Hypothesis draws the batch boundaries (and re-sends some events, as retries and overlapping exports do)
over the simulator's two attacked clusters and over the real lab log; the batches go through
``process_batch`` into a fresh store and must equal ``kubeguard scan``'s view of the same stream.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.batches import cut, processor, stored
from batch.traffic import comparable, offline_scan, simulated
from kubeguard.config import Settings
from kubeguard.store.database import open_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "lab-audit.jsonl.gz"

batch_sizes = st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=40)
#: (position in the stream, how many events before it are sent again there).
resends = st.lists(st.tuples(st.floats(0, 1), st.integers(1, 30)), max_size=4)


def with_resends(pairs, chosen):
    """The stream with a few runs of events sent a second time, shortly after the first."""
    stream = list(pairs)
    for where, length in sorted(chosen, reverse=True):
        at = max(1, int(where * len(stream)))
        stream[at:at] = stream[max(0, at - length) : at]
    return stream


def stored_after_batches(stream, sizes, detection: Settings | None = None):
    with tempfile.TemporaryDirectory() as directory:
        engine = open_engine(f"sqlite:///{directory}/kubeguard.db")
        worker = processor(engine) if detection is None else processor(engine, detection)
        for batch_id, cluster, body in cut(stream, sizes):
            assert worker.process_batch(batch_id, cluster, body).processed
        found = stored(engine)
        engine.dispose()
    return {key: comparable(value) for key, value in found.items()}


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=batch_sizes, chosen=resends)
def test_simulated_clusters_any_batching_equals_the_scan(sizes, chosen):
    stream = with_resends(simulated(), chosen)
    expected = {key: comparable(value) for key, value in offline_scan(stream).items()}
    assert any(finding["count"] > 1 for finding in expected.values())
    assert stored_after_batches(stream, sizes) == expected


def lab_pairs(path: Path) -> list[tuple[str, bytes]]:
    with gzip.open(path) as lines:
        return [("lab", orjson.dumps(orjson.loads(line))) for line in lines if line.strip()]


@settings(max_examples=8, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30), chosen=resends)
def test_the_lab_log_any_batching_equals_the_scan(sizes, chosen):
    stream = with_resends(lab_pairs(EXAMPLES), chosen)
    expected = {key: comparable(value) for key, value in offline_scan(stream, Settings()).items()}
    assert len(expected) >= 5
    assert stored_after_batches(stream, sizes, Settings()) == expected


def test_the_shared_lab_corpus_batched_as_its_webhook_sent_it_equals_the_scan(lab_dir):
    """The corpus's own EventLists, one batch each, as the API server's webhook backend POSTed them."""
    with gzip.open(lab_dir / "webhook-eventlists.jsonl.gz") as lines:
        lists = [orjson.loads(line) for line in lines if line.strip()]
    stream = [("lab", orjson.dumps(item)) for event_list in lists for item in event_list["items"]]
    sizes = [len(event_list["items"]) for event_list in lists]
    expected = {key: comparable(value) for key, value in offline_scan(stream, Settings()).items()}
    assert len(expected) >= 5
    assert stored_after_batches(stream, sizes, Settings()) == expected
