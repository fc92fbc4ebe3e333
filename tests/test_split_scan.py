"""The split scan (``kubeguard.split_scan``) finds exactly what the one-process scan finds.

Each test scans the same file twice, once in one process and once with the mappers forked, with chunks
made small so that even a small file is cut into many, and compares findings (without the wall-clock
``createdAt``/``updatedAt`` stamps), stats, rejects with their line numbers and detector error counts.
"""

from __future__ import annotations

import gc
import gzip
import os
import pickle
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeguard import scan as scan_module
from kubeguard import split_scan
from kubeguard.audit import decode
from kubeguard.audit.decode import EventReader
from kubeguard.config import Settings
from kubeguard.detectors.registry import default_detectors
from kubeguard.detectors.state import MemoryState
from kubeguard.pipeline import Pipeline
from kubeguard.scan import ScanResult, run_scan

ROOT = Path(__file__).resolve().parents[1]
LAB_LOG = ROOT / "examples" / "lab-audit.jsonl.gz"
EVENT_LISTS = ROOT / "tests" / "data" / "lab-scenario" / "webhook-eventlists.jsonl.gz"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the split scan needs fork()")


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split_scan, "CHUNK_BYTES", 16 * 1024)
    monkeypatch.delenv(split_scan.PROCESSES_ENV, raising=False)
    monkeypatch.setattr(split_scan, "usable_cores", lambda: 2)


def without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_clock(v) for k, v in value.items() if k not in ("createdAt", "updatedAt")}
    if isinstance(value, list):
        return [without_clock(v) for v in value]
    return value


def outcome(result: ScanResult) -> dict[str, Any]:
    return {
        "findings": without_clock(result.findings),
        "stats": repr(result.stats),
        "records": result.records,
        "rejected": result.rejected,
        "rejects": [str(r) for r in result.rejects],
        "errors": result.detector_errors,
    }


def learned(pipeline: Pipeline) -> dict[str, Any]:
    """What a scan leaves learned: the anomaly baselines (pending tables folded) and the detectors' state."""
    baselines = pipeline.baselines
    state = pipeline.engine.context.state
    return {
        "baselines": baselines.to_bytes() if baselines is not None else None,
        "state": repr(state.__dict__),
    }


def both(path: Path, config: Settings | None = None, **options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one-process and the split scan of ``path``: what each found and what each learned."""
    config = config or Settings()
    results = []
    made: list[Pipeline] = []

    class Recorded(Pipeline):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    for split in (False, True):
        original, scan_module.Pipeline = scan_module.Pipeline, Recorded  # type: ignore[misc]
        try:
            result = run_scan([str(path)], config, pipeline_options={}, split=split, **options)
        finally:
            scan_module.Pipeline = original  # type: ignore[misc]
        results.append({**outcome(result), "learned": learned(made[-1])})
    return results[0], results[1]


def lab_lines() -> list[bytes]:
    return gzip.decompress(LAB_LOG.read_bytes()).splitlines()


def repeated_lab(path: Path, copies: int) -> Path:
    """The lab log ``copies`` times, each copy with fresh auditIDs (so that de-duplication keeps them)."""
    with path.open("wb") as out:
        for copy in range(copies):
            for number, line in enumerate(lab_lines()):
                event = orjson.loads(line)
                if copy:
                    event["auditID"] = str(uuid.UUID(int=copy << 32 | number))
                out.write(orjson.dumps(event) + b"\n")
    return path


def test_lab_log_split_equals_one_process(tmp_path: Path) -> None:
    path = repeated_lab(tmp_path / "lab.jsonl", 3)
    one, split = both(path)
    assert one["findings"], "the lab log has attacks to find"
    assert split == one
    assert split_scan.split_plan([str(path)], Pipeline(Settings(), MemoryState()), None, min_bytes=0) is not None


def test_simulated_attacks_split_equals_one_process(tmp_path: Path) -> None:
    from kubeguard.sim import SimConfig, Simulator

    simulator = Simulator(SimConfig(seed=7, duration=timedelta(days=2), learning=timedelta(days=1),
                                    attacks=["all"], scale=0.01))
    path = tmp_path / "sim.jsonl"
    with path.open("wb") as out:
        for event in simulator.events():
            out.write(orjson.dumps(event) + b"\n")
    config = Settings()
    config.anomaly.learning_days = 1
    config.detectors.packs = ["audit-trail"]
    one, split = both(path, config)
    types = {f["type"] for f in one["findings"]}
    assert any("AnomalousBehavior" in t for t in types) and len(types) > 5, types
    assert split == one


def test_event_lists_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "lists.jsonl"
    path.write_bytes(gzip.decompress(EVENT_LISTS.read_bytes()))
    one, split = both(path)
    assert one["findings"]
    assert split == one


def test_broken_lines_keep_their_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "MAX_RECORD_BYTES", 8 * 1024)
    lines = lab_lines()
    mixed: list[bytes] = []
    for number, line in enumerate(lines):
        mixed.append(line)
        if number % 97 == 0:
            mixed.append(line)  # a duplicate: counted once
        if number % 131 == 0:
            mixed.append(b'{"kind": "Event", "auditID": ')  # not JSON
        if number % 151 == 0:
            mixed.extend([b"", b"   "])  # blank lines count for numbering only
        if number % 173 == 0:
            mixed.append(line.replace(b'"stageTimestamp":"', b'"stageTimestamp":"x'))  # unreadable time
        if number % 211 == 0:
            mixed.append(b'{"kind": "Event"}')  # JSON, but not an audit event
        if number % 301 == 0:
            mixed.append(b'{"auditID": "' + b"x" * 20_000 + b'"}')  # longer than MAX_RECORD_BYTES
    path = tmp_path / "dirty.jsonl"
    path.write_bytes(b"\n".join(mixed))  # no newline after the last line
    one, split = both(path)
    assert one["rejected"] > 20 and "unreadable" not in one["rejects"][0]
    assert split == one


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picks=st.lists(st.integers(min_value=0, max_value=1305), min_size=1, max_size=400),
    garbage=st.lists(st.sampled_from([b"", b"{", b"[]", b"null", b'{"verb": 1}']), max_size=10),
    chunk=st.integers(min_value=1, max_value=64 * 1024),
)
def test_any_mixture_splits_the_same(tmp_path: Path, picks: list[int], garbage: list[bytes], chunk: int) -> None:
    """Lab events in any order, repeats included (duplicates), with garbage, cut into chunks of any size."""
    lines = lab_lines()
    body = [lines[i % len(lines)] for i in picks]
    assert_garbled_splits_the_same(tmp_path / f"mix-{chunk}.jsonl", body, garbage, 37, chunk)


def assert_garbled_splits_the_same(path: Path, body: list[bytes], garbage: list[bytes], spread: int,
                                   chunk: int) -> None:
    """``body`` with the ``garbage`` lines spread through it, cut into chunks of ``chunk`` bytes: the split
    scan equals the one-process scan."""
    for offset, junk in enumerate(garbage):
        body.insert((offset * spread) % (len(body) + 1), junk)
    path.write_bytes(b"\n".join(body) + b"\n")
    split_scan.CHUNK_BYTES = chunk
    one, split = both(path)
    assert split == one


# Weighted by repeats, so that examples often combine a counted stage, a success, a dry run and an anonymous
# caller (a stateless detector's finding that the outcome decides).
STAGES = ["ResponseComplete"] * 4 + ["ResponseStarted", "RequestReceived", "Panic", "", None]
CODES = [200, 201, 201, 101, 403, 500, None]
SUBRESOURCES = [None, None, None, "exec", "attach", "portforward", "status"]
URIS = [None, "?dryRun=All", "?dryRun=All", "?dryRun=all", "?dryrun=All&x=1"]
#: Who calls: as logged, another AWS role (another learning key), or anonymous (a stateless detector's finding).
CALLERS = ["logged", "role", "anonymous", "anonymous"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=1305), st.sampled_from(STAGES), st.sampled_from(CODES),
            st.sampled_from(SUBRESOURCES), st.sampled_from(URIS), st.sampled_from(CALLERS),
        ),
        min_size=20, max_size=300,
    ),
    garbage=st.lists(st.sampled_from([b"{", b'{"stage": 5}', b'{"auditID": "x", "stage": "ResponseStarted", '
                                      b'"user": 1}', b'{"verb": "get", "stage": "Panic"}']), max_size=8),
    chunk=st.integers(min_value=512, max_value=32 * 1024),
)
def test_odd_stages_codes_and_callers_split_the_same(
    tmp_path: Path, edits: list[tuple[int, Any, Any, Any, Any, str]], garbage: list[bytes], chunk: int
) -> None:
    """Lab events with their stage, status code, subresource, dry-run query and caller changed (what the
    mappers decide per event: the stage filter, the de-duplication kind, the outcome that routes the event,
    the learning key), mixed with lines that fail to decode, cut into chunks of any size."""
    lines = lab_lines()
    body: list[bytes] = []
    for index, stage, code, subresource, uri, caller in edits:
        event = orjson.loads(lines[index % len(lines)])
        if stage is None:
            event.pop("stage", None)
        else:
            event["stage"] = stage
        if code is None:
            event.pop("responseStatus", None)
        else:
            event["responseStatus"] = {"code": code}
        if subresource is not None and event.get("objectRef"):
            event["objectRef"]["subresource"] = subresource
        if uri is not None:
            event["requestURI"] = event.get("requestURI", "/").split("?")[0] + uri
        if caller == "role":
            event.setdefault("user", {})["extra"] = {"arn": [f"arn:aws:iam::1:role/r{index % 3}"]}
        elif caller == "anonymous":
            event["user"] = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
        body.append(orjson.dumps(event))
    assert_garbled_splits_the_same(tmp_path / f"odd-{chunk}.jsonl", body, garbage, 31, chunk)


def test_the_collector_is_tuned_while_splitting_and_restored_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = repeated_lab(tmp_path / "lab.jsonl", 1)
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    during: list[tuple[tuple[int, ...], int]] = []
    reduce = split_scan.reduce_chunks

    def watched(*args: Any, **kwargs: Any) -> int:
        during.append((gc.get_threshold(), gc.get_freeze_count()))
        return reduce(*args, **kwargs)

    monkeypatch.setattr(split_scan, "reduce_chunks", watched)
    one, split = both(path)
    assert split == one
    assert during and during[0][0][0] == max(threshold[0], split_scan.GC_THRESHOLD)
    assert during[0][1] > frozen  # what existed before the fork is frozen
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)


def test_stateless_detectors_that_fail_or_yield_nothing_split_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stateless detector that raises on some events is counted as on one process; one that returns an
    empty (but truthy) generator finds nothing; the findings of the others on those events stand."""
    from kubeguard.detectors.callers.anonymous import SuccessfulAnonymousAccess
    from kubeguard.detectors.signatures.privileged_identity_impersonated import PrivilegedIdentityImpersonated

    detect = SuccessfulAnonymousAccess.detect

    def flaky(self: Any, event: Any, ctx: Any) -> Any:
        if event.auditID.endswith(("1", "7")):
            raise ValueError("flaky detector")
        return detect(self, event, ctx)

    def nothing(self: Any, event: Any, ctx: Any) -> Any:
        return (d for d in ())

    monkeypatch.setattr(SuccessfulAnonymousAccess, "detect", flaky)
    monkeypatch.setattr(PrivilegedIdentityImpersonated, "detect", nothing)
    path = repeated_lab(tmp_path / "lab.jsonl", 2)
    one, split = both(path)
    assert one["errors"].get("successful-anonymous-access") and one["findings"]
    assert split == one


def test_interned_keys_start_again_when_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split_scan, "MAX_INTERNED", 5)
    path = repeated_lab(tmp_path / "lab.jsonl", 2)
    one, split = both(path)
    assert split == one


def test_a_failed_mapper_means_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repeated_lab(tmp_path / "lab.jsonl", 2)
    expected = outcome(run_scan([str(path)], Settings(), pipeline_options={}, split=False))

    def broken(self: Any, stream: Any, source: str) -> Any:
        raise RuntimeError("mapper down")

    monkeypatch.setattr(split_scan.Mapper, "map_chunk", broken)
    assert outcome(run_scan([str(path)], Settings(), pipeline_options={}, split=True)) == expected


def test_what_stays_in_one_process(tmp_path: Path) -> None:
    path = repeated_lab(tmp_path / "lab.jsonl", 1)
    pipeline = Pipeline(Settings(), MemoryState())
    plan = split_scan.split_plan
    assert plan([str(path)], pipeline, None, min_bytes=0) is not None
    assert plan([str(path)], pipeline, None, min_bytes=split_scan.MIN_SPLIT_BYTES) is None  # small
    assert plan([str(LAB_LOG)], pipeline, None, min_bytes=0) is None  # gzip
    assert plan(["-"], pipeline, None, min_bytes=0) is None  # stdin
    assert plan([str(path), str(path)], pipeline, None, min_bytes=0) is None  # several inputs
    assert plan([str(tmp_path / "missing")], pipeline, None, min_bytes=0) is None  # the scan reports it
    assert plan([str(path)], pipeline, "cloudwatch", min_bytes=0) is None  # an envelope format
    pretty = tmp_path / "pretty.json"
    pretty.write_text("[\n" + ",\n".join(line.decode() for line in lab_lines()[:3]) + "\n]\n")
    assert plan([str(pretty)], pipeline, None, min_bytes=0) is None  # one JSON document
    pipeline.observers.append(lambda event: None)
    assert plan([str(path)], pipeline, None, min_bytes=0) is None  # history is kept in order


def test_the_processes_switch_keeps_a_scan_in_one_process_or_splits_a_small_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = repeated_lab(tmp_path / "lab.jsonl", 1)
    pipeline = Pipeline(Settings(), MemoryState())
    large = path.stat().st_size + 1  # the file counts as small
    assert split_scan.split_plan([str(path)], pipeline, None, min_bytes=large) is None
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # a busy machine still splits a large file
    assert split_scan.split_plan([str(path)], pipeline, None, min_bytes=0) is not None
    monkeypatch.setenv(split_scan.PROCESSES_ENV, "split")
    assert split_scan.split_plan([str(path)], pipeline, None, min_bytes=large) is not None
    monkeypatch.setenv(split_scan.PROCESSES_ENV, "1")
    assert split_scan.split_plan([str(path)], pipeline, None, min_bytes=0) is None


def test_state_file_scans_in_one_process(tmp_path: Path) -> None:
    path = repeated_lab(tmp_path / "lab.jsonl", 1)
    state = tmp_path / "state.bin"
    result = run_scan([str(path)], Settings(), pipeline_options={}, split=True, state_path=state)
    assert state.exists() and result.findings


def test_chunks_start_at_line_starts(tmp_path: Path) -> None:
    data = b"".join(b"x" * (n % 50) + b"\n" for n in range(2000)) + b"tail"
    path = tmp_path / "lines"
    path.write_bytes(data)
    split_scan.CHUNK_BYTES = 333
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = -(-len(data) // split_scan.CHUNK_BYTES)
        starts = [split_scan.chunk_start(fd, i, len(data)) for i in range(chunks + 1)]
    finally:
        os.close(fd)
    assert starts[0] == 0 and starts[-1] == len(data)
    assert starts == sorted(starts)
    assert all(start == 0 or data[start - 1 : start] == b"\n" for start in starts[:-1])
    pieces = [data[a:b] for a, b in zip(starts, starts[1:], strict=False)]
    assert b"".join(pieces) == data


def corpus_events() -> list[Any]:
    return list(EventReader().read_paths([str(LAB_LOG), str(EVENT_LISTS)]))


def test_relevant_false_means_nothing_found_and_nothing_recorded() -> None:
    """The promise a detector's ``relevant`` makes, checked on every event of the lab corpus while a
    pipeline learns from it (no learning period, so the anomaly detectors judge from the start)."""
    import pickle

    config = Settings()
    config.anomaly.learning_days = 0
    config.anomaly.min_principal_events = 1
    detectors = default_detectors(["audit-trail"])
    pipeline = Pipeline(config, MemoryState(), detectors=detectors)
    context = pipeline.engine.context
    gated = [d for d in detectors if hasattr(d, "relevant")]
    assert len(gated) >= 5

    def snapshot() -> bytes:
        baselines = context.baselines
        return pickle.dumps((context.state.__dict__, baselines._pending, baselines.clusters))

    skipped = 0
    for event in corpus_events():
        idle = [d for d in gated if not d.relevant(event)]
        if not idle:
            pipeline.process_event(event)
            continue
        skipped += len(idle)
        before = snapshot()
        for detector in idle:
            assert not list(detector.detect(event, context)), detector.name
        assert snapshot() == before, [d.name for d in idle]
        pipeline.process_event(event)
    assert skipped > 1000
    assert pipeline.stats.detections > 0


def test_prepare_then_apply_is_detect() -> None:
    from kubeguard.detectors.signatures.trackers import WildcardRoleTracker

    tracker = WildcardRoleTracker()
    direct, prepared = Pipeline(Settings(), MemoryState()), Pipeline(Settings(), MemoryState())
    recorded = 0
    for event in corpus_events():
        if event.resource not in ("roles", "clusterroles"):
            continue
        tracker.detect(event, direct.engine.context)
        fact = tracker.prepare(event)
        if fact is not None:
            recorded += 1
            tracker.apply(fact, prepared.engine.context)
    assert recorded > 10
    assert repr(direct.engine.context.state.__dict__) == repr(prepared.engine.context.state.__dict__)


def test_learner_prepare_then_apply_is_detect() -> None:
    """The learner's prepared facts (what a split scan reads in a mapper for an event it sends whole)
    teach the baselines exactly what its ``detect`` does, bodies included."""
    from kubeguard.detectors.anomaly.detectors import BODY_RESOURCES, AnomalyLearner

    learner = AnomalyLearner()
    direct, prepared = Pipeline(Settings(), MemoryState()), Pipeline(Settings(), MemoryState())
    bodies = 0
    for event in corpus_events():
        learner.detect(event, direct.engine.context)
        fact = learner.prepare(event)
        bodies += fact[3] is not None and event.resource in BODY_RESOURCES
        learner.apply(fact, prepared.engine.context)
    assert bodies > 10
    assert direct.baselines._pending == prepared.baselines._pending
    assert direct.baselines.to_bytes() == prepared.baselines.to_bytes()


def counting_rescans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the chunks the reducer reads again (the one-by-one path) instead of taking in bulk."""
    rescanned: list[int] = []
    rescan = split_scan._rescan_chunk

    def recorded(pipeline: Any, plan: Any, index: int, cluster: Any, add: Any) -> None:
        rescanned.append(index)
        rescan(pipeline, plan, index, cluster, add)

    monkeypatch.setattr(split_scan, "_rescan_chunk", recorded)
    return rescanned


def test_chunks_of_new_events_are_taken_in_bulk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rescanned = counting_rescans(monkeypatch)
    path = repeated_lab(tmp_path / "lab.jsonl", 2)
    one, split = both(path)
    assert split == one
    assert rescanned == []


def test_a_chunk_with_a_duplicate_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rescanned = counting_rescans(monkeypatch)
    lines = lab_lines()
    path = tmp_path / "dups.jsonl"
    path.write_bytes(b"\n".join([*lines, lines[700], *lines[:5]]) + b"\n")  # late repeats of earlier events
    one, split = both(path)
    assert split == one
    assert one["stats"] != outcome(run_scan([str(LAB_LOG)], Settings(), pipeline_options={}, split=False))["stats"]
    assert rescanned, "the chunks holding the repeats must be judged event by event"
    assert len(rescanned) < 5


def test_a_chunk_that_could_fill_the_pending_tables_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for few pending keys, flushes fall inside chunks: those are counted one by one."""
    from kubeguard.detectors.anomaly import baselines

    rescanned = counting_rescans(monkeypatch)
    monkeypatch.setattr(baselines, "MAX_PENDING", 40)
    path = repeated_lab(tmp_path / "lab.jsonl", 2)
    one, split = both(path)
    assert split == one
    assert rescanned


def _frame(index: int, size: int) -> bytes:
    payload = pickle.dumps((index, b"x" * size))
    return split_scan._FRAME.pack(len(payload)) + payload


def test_a_mapper_that_runs_ahead_is_read_while_the_other_is_awaited() -> None:
    """Mapper 1 writes all its chunks (more than its pipe holds) before mapper 0 writes any: the reducer
    reads mapper 1's pipe while it waits for chunk 0, so mapper 1 finishes instead of blocking for good."""
    chunks, size = 40, 256 * 1024  # mapper 1's share, 5 MiB, is several times a pipe's capacity
    plan = split_scan.SplitPlan(path=Path("-"), source="-", size=0, chunks=chunks)
    ends = [os.pipe() for _ in range(split_scan.MAPPERS)]
    ahead_done = threading.Event()

    def write(first: int) -> None:
        with os.fdopen(ends[first][1], "wb") as out:
            if first == 0 and not ahead_done.wait(30):
                return  # the other mapper never finished: the reducer did not read ahead
            for index in range(first, chunks, split_scan.MAPPERS):
                out.write(_frame(index, size))
        if first == 1:
            ahead_done.set()

    writers = [threading.Thread(target=write, args=(first,), daemon=True) for first in range(split_scan.MAPPERS)]
    for writer in writers:
        writer.start()
    mappers = [(0, os.fdopen(read_end, "rb")) for read_end, _ in ends]
    try:
        assert [index for index, _ in split_scan.chunk_results(mappers, plan)] == list(range(chunks))
        assert ahead_done.is_set()
    finally:
        for _, stream in mappers:
            stream.close()


def test_a_mapper_cut_off_inside_a_frame_is_a_failed_mapper() -> None:
    plan = split_scan.SplitPlan(path=Path("-"), source="-", size=0, chunks=4)
    ends = [os.pipe() for _ in range(split_scan.MAPPERS)]
    with os.fdopen(ends[0][1], "wb") as out:
        out.write(_frame(0, 10) + _frame(2, 100)[:-5])  # chunk 2 stops short
    with os.fdopen(ends[1][1], "wb") as out:
        out.write(_frame(1, 10) + _frame(3, 10))
    mappers = [(0, os.fdopen(read_end, "rb")) for read_end, _ in ends]
    seen: list[int] = []
    with pytest.raises(split_scan.MapperFailed, match="mapper 0 stopped inside chunk 2"):
        for index, _ in split_scan.chunk_results(mappers, plan):
            seen.append(index)
    assert seen == [0, 1]
    for _, stream in mappers:
        stream.close()
