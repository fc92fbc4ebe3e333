"""A failed statement or commit at every step of a batch, then the retry: exactly an uninterrupted run.

The reference run processes the simulator's traffic batch by batch. The faulty run makes every batch's
first attempt fail — at its first statement, its second, ... walking through every step, and at the
commit — and retries it, half the time with the same processor (its caches must be dropped) and half
with a new one (a restarted process). Findings, every ``service.count`` and every row of detector state
must then equal the reference, and the findings must equal an offline scan.
"""

from __future__ import annotations

import itertools

import pytest
from store.databases import database_url

from batch.batches import cut, processor, state_rows, stored
from batch.faults import Faults, InjectedFault
from batch.traffic import comparable, offline_scan, simulated
from kubeguard.batch.processor import StateReadFailed
from kubeguard.store.database import open_engine


def test_a_failure_at_every_step_of_a_batch_then_a_retry_gives_the_uninterrupted_result(db_url, tmp_path):
    pairs = simulated()
    batches = cut(pairs, itertools.cycle([1500, 700, 2300, 40]))
    expected = offline_scan(pairs)

    dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    (tmp_path / "reference").mkdir()
    with database_url(dialect, tmp_path / "reference") as reference_url:
        run_with_faults(db_url, reference_url, batches, expected)


def run_with_faults(db_url, reference_url, batches, expected) -> None:
    reference_engine = open_engine(reference_url)
    counter = Faults(reference_engine)
    reference = processor(reference_engine)
    steps: list[int] = []
    for batch_id, cluster, body in batches:
        counter.arm()
        assert reference.process_batch(batch_id, cluster, body).processed
        steps.append(counter.statements)

    engine = open_engine(db_url)
    faults = Faults(engine)
    current = processor(engine)
    walk = 0
    failed_steps: set[int] = set()
    for index, ((batch_id, cluster, body), statements) in enumerate(zip(batches, steps, strict=True)):
        commit = index % 5 == 2
        step = None if commit else walk % statements
        faults.arm(statement=step, commit=commit)
        with pytest.raises((InjectedFault, StateReadFailed)):
            current.process_batch(batch_id, cluster, body)
        if step is not None:
            failed_steps.add(step)
            walk += 1
        if index % 2:
            current = processor(engine)  # a restart: nothing of the failed attempt survives in memory
        faults.arm()
        assert current.process_batch(batch_id, cluster, body).processed
        assert not current.process_batch(batch_id, cluster, body).processed, "a batch must be stored once"

    assert faults.fired.count("commit") == sum(1 for i in range(len(batches)) if i % 5 == 2)
    assert set(range(min(steps))) <= failed_steps, "every step of a batch has had its failure"
    got = stored(engine)
    assert {k: comparable(v) for k, v in got.items()} == {k: comparable(v) for k, v in expected.items()}
    assert state_rows(engine) == state_rows(reference_engine)
    reference_engine.dispose()
    engine.dispose()
