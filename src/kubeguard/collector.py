"""The garbage collector's settings for the long-running services (``serve`` and ``worker``).

A service decodes every webhook batch into thousands of short-lived objects, and what it builds at start
(modules, detectors, intel, the store's metadata) lives as long as the process. With Python's defaults a
young-generation pass ran every 700 allocations (about a dozen per 400-event batch), and every full pass
walked the whole start-up heap again: under a steady webhook load on PostgreSQL the collector took 0.41-0.59 s
of the service's 4.1-4.6 s of CPU (160,000 events; ``gc.callbacks``), in a process whose interpreter lock
bounds the rate it can acknowledge. Frozen, the start-up heap is never walked again, and young passes every
:data:`SERVICE_THRESHOLD` allocations still collect every cycle, only later: 0.035-0.047 s.
"""

from __future__ import annotations

import gc

#: Allocations between two young-generation passes (Python's default is 700).
SERVICE_THRESHOLD = 20_000


def tune_for_service() -> None:
    """Freeze what is alive now (call it once the service is built) and space the young passes out."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, SERVICE_THRESHOLD), middle, old)
