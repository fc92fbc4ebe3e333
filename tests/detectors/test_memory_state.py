"""The scan's in-memory detector state is bounded: per scope, the oldest keys go past the cap, counted and logged."""

from __future__ import annotations

import logging
from pathlib import Path

from kubeguard.detectors.state import MAX_KEYS_PER_SCOPE, MemoryState


def test_keys_are_remembered_once_until_forgotten():
    state = MemoryState()
    assert state.first_seen("images", "nginx:1") is True
    assert state.first_seen("images", "nginx:1") is False
    assert state.seen("images", "nginx:1") and not state.seen("roles", "nginx:1")
    state.forget("images", "nginx:1")
    state.forget("roles", "never-seen")  # forgetting an unknown key or scope is a no-op
    assert state.first_seen("images", "nginx:1") is True
    assert state.evicted == {}


def test_past_the_cap_the_oldest_tenth_is_forgotten_counted_and_logged(caplog):
    state = MemoryState(max_keys=100)
    with caplog.at_level(logging.WARNING, logger="kubeguard.detectors.state"):
        for index in range(250):
            assert state.first_seen("images", f"image-{index}") is True
    assert state.evicted == {"images": 150}  # 15 evictions of 10 keys each kept the scope at 100 or fewer
    assert [r.getMessage() for r in caplog.records][-1] == (
        "state images: 100 keys reached the cap; forgot the 10 oldest (150 so far)")
    assert len(caplog.records) == 15
    assert not state.seen("images", "image-0") and not state.seen("images", "image-149")
    assert all(state.seen("images", f"image-{index}") for index in range(150, 250))
    # A forgotten key counts as new again; a remembered one does not.
    assert state.first_seen("images", "image-249") is False
    assert state.first_seen("images", "image-0") is True


def test_scopes_are_capped_separately():
    state = MemoryState(max_keys=10)
    for index in range(10):
        state.first_seen("images", f"i{index}")
        state.first_seen("roles", f"r{index}")
    state.first_seen("images", "i10")
    assert state.evicted == {"images": 1}
    assert state.seen("roles", "r0") and not state.seen("images", "i0")


def test_a_saved_state_still_forgets_its_oldest_keys_first(tmp_path: Path):
    path = tmp_path / "state.json"
    state = MemoryState(max_keys=10)
    for name in ("zeta", "alpha", "mu"):  # not alphabetical: the file keeps the order they were seen in
        state.first_seen("images", name)
    state.save(path)
    loaded = MemoryState.load(path)
    loaded.max_keys = 3
    loaded.first_seen("images", "omega")
    assert not loaded.seen("images", "zeta")
    assert all(loaded.seen("images", name) for name in ("alpha", "mu", "omega"))


def test_the_default_cap_is_far_above_what_a_cluster_holds():
    assert MemoryState().max_keys == MAX_KEYS_PER_SCOPE >= 100_000
