"""``kubeguard serve`` lets detection's thread hold the interpreter lock for 1 ms at a time, not Python's 5 ms,
so the event loop answering the webhook gets it back sooner (see ``kubeguard.serve.SWITCH_INTERVAL_SECONDS``)."""

from __future__ import annotations

import sys

import kubeguard.serve
from kubeguard.serve import SWITCH_INTERVAL_SECONDS, serve


def test_the_service_runs_with_the_shorter_switch_interval(tmp_path, monkeypatch):
    seen: list[float] = []
    monkeypatch.setattr(kubeguard.serve.uvicorn, "run", lambda _app, **_options: seen.append(sys.getswitchinterval()))
    before = sys.getswitchinterval()
    try:
        serve(port=0, db=f"sqlite:///{tmp_path / 'kg.db'}")
    finally:
        sys.setswitchinterval(before)
    assert seen == [SWITCH_INTERVAL_SECONDS]
    assert before > SWITCH_INTERVAL_SECONDS
