"""The split scan's bulk steps equal the one-by-one steps they stand for.

:meth:`EventWindow.duplicates` must name the keys :meth:`EventWindow.first` would call duplicates, and
:meth:`EventWindow.count_many` count the rest as it would; :meth:`Baselines.defer_rows` must leave the pending tables as
:meth:`Baselines.defer_key` called event by event leaves them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeguard.batch.window import EventWindow
from kubeguard.detectors.anomaly.baselines import Baselines

KEYS = st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"]), st.sampled_from(["ResponseComplete", "connect"]))


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.lists(KEYS, max_size=6), max_size=8), size=st.integers(min_value=1, max_value=6))
def test_duplicates_then_count_many_equals_first(chunks: list[list[tuple[str, str]]], size: int) -> None:
    """Chunk by chunk, the bulk window names the duplicates :meth:`first` finds and counts the rest alike."""
    one_by_one, bulk = EventWindow(size), EventWindow(size)
    for chunk in chunks:
        expected = {i for i, (audit_id, kind) in enumerate(chunk) if not one_by_one.first("c1", audit_id, kind)}
        assert bulk.duplicates("c1", chunk) == expected
        bulk.count_many("c1", chunk, expected)
        assert bulk._counts == one_by_one._counts
    for audit_id in "abcdefgh":  # the same keys are remembered at the same positions
        for kind in ("ResponseComplete", "connect"):
            assert bulk.first("c1", audit_id, kind) == one_by_one.first("c1", audit_id, kind)


def test_duplicates_counts_nothing() -> None:
    window = EventWindow()
    window.count_many("c1", [("x", "ResponseComplete"), ("y", "ResponseComplete")], set())
    assert window.duplicates("c1", [("z", "ResponseComplete"), ("x", "ResponseComplete")]) == {1}
    assert window.duplicates("c1", [("w", "ResponseComplete"), ("w", "ResponseComplete")]) == {1}
    assert window.first("c1", "z", "ResponseComplete") and window.first("c1", "w", "ResponseComplete")
    assert not window.first("c1", "y", "ResponseComplete")


def test_a_window_with_hooks_is_never_counted_in_bulk() -> None:
    class Hooked(EventWindow):
        first = EventWindow.first_with_hooks

        def _counted(self, cluster: str, key: object, position: int) -> None:
            pass

    assert Hooked().duplicates("c1", [("x", "ResponseComplete")]) is None


OWNERS = [("c1", "alice"), ("c1", "bob"), ("c2", "alice")]
ACTIONS = [("get", "pods", "", "dev", "", "10.0.0.1", "kubectl"), ("list", "secrets", "", "", "", "10.0.0.2", "curl")]
STAMPS = st.sampled_from([f"2026-11-30T10:0{m}:00.000000Z" for m in range(10)])


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), STAMPS), max_size=12), max_size=6))
def test_defer_rows_equals_defer_key_one_by_one(runs: list[list[tuple[int, int, str]]]) -> None:
    one_by_one, summed = Baselines(), Baselines()
    for run in runs:
        rows: dict[tuple[int, int], list[object]] = {}
        for owner, action, stamp in run:
            one_by_one.defer_key(OWNERS[owner], ACTIONS[action], stamp)
            slot = rows.get((owner, action))
            if slot is None:
                rows[(owner, action)] = [1, stamp, stamp]
            else:
                slot[0] += 1  # type: ignore[operator]
                slot[1] = min(slot[1], stamp)  # type: ignore[type-var]
                slot[2] = max(slot[2], stamp)  # type: ignore[type-var]
        summed.defer_rows(OWNERS, ACTIONS, rows)
    assert summed._pending == one_by_one._pending
    assert [list(t) for t in summed._pending.values()] == [list(t) for t in one_by_one._pending.values()]
    assert summed.pending_room() == one_by_one.pending_room()
    one_by_one.flush()
    summed.flush()
    assert summed.to_bytes() == one_by_one.to_bytes()
