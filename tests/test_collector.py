"""The services' collector settings: the start-up heap frozen, young passes spaced out."""

from __future__ import annotations

import gc

from kubeguard.collector import SERVICE_THRESHOLD, tune_for_service


def test_a_service_freezes_what_it_built_and_spaces_its_young_passes():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, *before[1:])
        gc.unfreeze()
        tune_for_service()
        assert gc.get_freeze_count() > 0, "the start-up heap is in the permanent generation"
        assert gc.get_threshold() == (SERVICE_THRESHOLD, *before[1:])
        gc.set_threshold(50_000, *before[1:])
        tune_for_service()
        assert gc.get_threshold()[0] == 50_000, "a larger threshold set before is kept"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
