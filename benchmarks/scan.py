"""Throughput of ``kubeguard scan`` against bare JSON parsing of the same file.

Builds a large JSON Lines file, either from the real kube-apiserver log in ``examples/`` (``--source lab``,
the default: each copy of an event gets a fresh auditID, so de-duplication does not discard the copies) or
from the simulator's traffic with every attack (``--source sim``), then in one run measures:

* baseline: ``orjson.loads`` of every line, nothing else;
* kubeguard: the whole scan (read, decode, stage filter, de-duplication, every detector, a 10,000-entry
  custom threat list, finding building and aggregation);
* kubeguard keeping history: the same scan with ``--db`` (the activity store's roll-ups, entities, edges and
  first-seen pairs written to a fresh SQLite file), whose cost is printed as a share of the scan's time,
  with the store's size in bytes per million events.

It prints events/s for both and their ratio (> 1 means the scan is faster than bare parsing), in wall
time and in CPU time (the CPU ratio is steadier on a shared machine; a large file is scanned by several
processes, see ``kubeguard.split_scan``, so CPU time counts the children and the "one process" row shows
the same scan without them; on a busy machine the split scan's wall time gains little), plus the ratio
without the anomaly detectors, whose per-principal learning is the largest cost, the cost of kubeguard's
own detections beyond GuardDuty: the default ones (against GuardDuty's types alone) and the opt-in audit-trail pack, and
the cost of ``--sigma-rules N`` user rules (default 100, from ``benchmarks/sigma_rules.py``) as the ratio
of the full scan with and without them.

With ``--history-only`` it measures just the scan with and without history (run it with ``--source lab``
and ``--source sim``: the lab copies repeat the same events, so their roll-up rows collapse; the
simulator's names and times vary). ``--history-db postgresql+psycopg://host/db`` keeps the history in
PostgreSQL instead, each run in a schema of its own that is dropped afterwards.

``--instructions`` (with ``--history-only``) adds the same comparison in instructions executed, counted by
valgrind's callgrind in two child processes at once: on a shared machine the time of a two-second scan
swings by ten points from run to run (the scan alone took 1.65 s to 2.75 s in one hour), while the count is
the same from run to run. It leaves out what time sees and instructions do not (cache misses, the disk), so
it is printed beside the times, not instead of them. Each child warms up first (imports, the geo database)
and counts only the measured scan, which it runs through ``operator.call`` for callgrind to switch on at.

    python benchmarks/scan.py [--events 300000] [--source lab|sim] [--file PATH] [--history-only]
                              [--history-db URL] [--instructions]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import ipaddress
import operator
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from sigma_rules import write_rules  # benchmarks/sigma_rules.py, beside this script

from kubeguard.config import Settings
from kubeguard.scan import default_pipeline_options, run_scan

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "lab-audit.jsonl.gz"


def build_file(path: Path, events: int) -> int:
    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines()
    written = 0
    with path.open("wb") as out:
        while written < events:
            for line in lines:
                event = orjson.loads(line)
                event["auditID"] = str(uuid.UUID(int=written))
                out.write(orjson.dumps(event) + b"\n")
                written += 1
                if written >= events:
                    break
    return written


def build_sim_file(path: Path, events: int) -> int:
    from datetime import timedelta

    from kubeguard.sim import SimConfig, Simulator

    simulator = Simulator(SimConfig(seed=7, duration=timedelta(days=10), attacks=["all"]))
    written = 0
    with path.open("wb") as out:
        for event in simulator.events():
            out.write(orjson.dumps(event) + b"\n")
            written += 1
            if written >= events:
                break
    return written


def build_threat_list(path: Path, entries: int) -> None:
    base = int(ipaddress.ip_address("198.18.0.0"))
    path.write_text("\n".join(str(ipaddress.ip_address(base + i * 7)) for i in range(entries)) + "\n")


def bare_parse(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
            count += 1
    return count


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (a large scan forks its decoding processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(work) -> tuple[float, float]:
    """Wall time and CPU time of one run of ``work``, after a full collection of the previous run's garbage."""
    gc.collect()
    started, started_cpu = time.perf_counter(), cpu_seconds()
    work()
    return time.perf_counter() - started, cpu_seconds() - started_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--file", type=Path, help="scan this JSONL file instead of a generated one")
    parser.add_argument("--source", choices=("lab", "sim"), default="lab", help="what to generate")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sigma-rules", type=int, default=100, help="Sigma rules for the rules row (0: skip)")
    parser.add_argument("--history-only", action="store_true", help="measure only the scan with and without --db")
    parser.add_argument("--history-db", help="a PostgreSQL URL to keep the history in instead of a SQLite file")
    parser.add_argument("--instructions", action="store_true",
                        help="with --history-only, also count instructions under valgrind (callgrind)")
    parser.add_argument("--count-child", choices=("scan", "history"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_child:
        return count_child(args)
    if args.history_only:
        return history_only(args)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        path = args.file or workdir / "audit.jsonl"
        if args.file is None:
            (build_file if args.source == "lab" else build_sim_file)(path, args.events)
        threat_list = workdir / "threats.txt"
        build_threat_list(threat_list, 10_000)
        settings = Settings()
        settings.intel.threat_lists = [f"{threat_list}:TXT"]
        settings.intel.use_default_feeds = False
        options = default_pipeline_options(settings)
        events = bare_parse(path)
        size_mb = path.stat().st_size / 1e6

        findings = 0
        no_anomaly = Settings()
        no_anomaly.intel = settings.intel
        no_anomaly.anomaly.enabled = False

        with_pack = Settings()
        with_pack.intel = settings.intel
        with_pack.detectors.packs = ["audit-trail"]
        with_rules = Settings()
        with_rules.intel = settings.intel
        with_rules.anomaly = settings.anomaly
        with_rules.rules.paths = [str(write_rules(workdir / "rules", args.sigma_rules))] if args.sigma_rules else []

        def scan(config: Settings, *, guardduty_only: bool = False, history: str | None = None,
                 split: bool | None = None) -> None:
            nonlocal findings
            chosen = {**options, "detectors": guardduty_detectors()} if guardduty_only else options
            findings = len(run_scan([str(path)], config, pipeline_options=chosen, history_url=history,
                                    split=split).findings)

        run = 0

        def scan_with_history() -> None:
            nonlocal run
            run += 1
            scan(settings, history=f"sqlite:///{workdir / f'history-{run}.db'}")

        # Interleaved, so that a slow spell of a shared machine hits every measurement alike.
        baseline = full = single = signatures = guardduty = pack = ruled = history = (float("inf"), float("inf"))
        full_findings = pack_findings = 0
        for _ in range(args.runs):
            baseline = min(baseline, measure(lambda: bare_parse(path)))
            full = min(full, measure(lambda: scan(settings)))
            full_findings = findings
            single = min(single, measure(lambda: scan(settings, split=False)))
            signatures = min(signatures, measure(lambda: scan(no_anomaly)))
            guardduty = min(guardduty, measure(lambda: scan(settings, guardduty_only=True)))
            pack = min(pack, measure(lambda: scan(with_pack)))
            pack_findings = findings
            if args.sigma_rules:
                ruled = min(ruled, measure(lambda: scan(with_rules)))
            history = min(history, measure(scan_with_history))
        stored_bytes = store_bytes(workdir / f"history-{run}.db") - store_bytes(empty_store(workdir))
    print(f"file: {events:,} events ({args.file or args.source}), {size_mb:.1f} MB; best of {args.runs} runs")
    print(f"{'':38}{'wall events/s':>16}{'cpu events/s':>16}")
    rows = (
        ("baseline orjson.loads per line", baseline, ""),
        ("kubeguard scan, all detectors", full, f"  ({full_findings} findings)"),
        ("kubeguard scan, all, one process", single, ""),
        ("kubeguard scan, without anomaly", signatures, ""),
        ("kubeguard scan, GuardDuty types only", guardduty, ""),
        ("kubeguard scan, + audit-trail pack", pack, f"  ({pack_findings} findings)"),
        ("kubeguard scan, keeping history --db", history, ""),
    )
    for name, (wall, cpu), note in rows:
        print(f"{name:38}{events / wall:>16,.0f}{events / cpu:>16,.0f}{note}")
    for name, (wall, cpu), _ in rows[1:]:
        print(f"ratio {name[15:]:32}{baseline[0] / wall:>16.2f}{baseline[1] / cpu:>16.2f}   (vs baseline)")
    if args.sigma_rules:
        wall, cpu = ruled
        print(f"{'kubeguard scan, all + ' + str(args.sigma_rules) + ' Sigma rules':38}"
              f"{events / wall:>16,.0f}{events / cpu:>16,.0f}")
        print(f"ratio {'with / without Sigma rules':32}{full[0] / wall:>16.2f}{full[1] / cpu:>16.2f}"
              "   (1.00 = free)")
    print(f"cost of kubeguard's default extensions: {full[1] / guardduty[1]:.3f}x CPU time of GuardDuty's types "
          f"alone; audit-trail pack: {pack[1] / full[1]:.3f}x the default scan")
    # A scan keeping history runs in one process, so its cost is measured against the one-process scan.
    wall_cost, cpu_cost = history[0] / single[0] - 1, history[1] / single[1] - 1
    print(f"history cost: {wall_cost:+.1%} wall, {cpu_cost:+.1%} cpu of the one-process scan without it (budget +15%)")
    print(f"activity store: {stored_bytes / events * 1e6 / 1e6:,.1f} MB per million events ({stored_bytes:,} bytes)")


def history_only(args: argparse.Namespace) -> None:
    """The scan with and without keeping history, interleaved, best of ``--runs``."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        path = args.file or workdir / "audit.jsonl"
        if args.file is None:
            (build_file if args.source == "lab" else build_sim_file)(path, args.events)
        settings = Settings()
        settings.intel.use_default_feeds = False
        options = default_pipeline_options(settings)
        events = bare_parse(path)
        counted = 0

        def scan(history: str | None = None) -> None:
            nonlocal counted
            # split=False: a scan keeping history runs in one process, so the one it is compared with does too.
            counted = run_scan([str(path)], settings, pipeline_options=options, history_url=history,
                               split=False).stats.counted

        stores: list[HistoryStore] = []

        def scan_with_history() -> None:
            store = HistoryStore(args.history_db, workdir / f"history-{len(stores)}.db")
            stores.append(store)
            scan(store.url)

        scan()  # warm-up: imports, intel, geo
        full = history = (float("inf"), float("inf"))
        try:
            stores.append(HistoryStore(args.history_db, workdir / "empty.db"))
            empty = stores[-1].size()
            for _ in range(args.runs):
                full = min(full, measure(scan))
                history = min(history, measure(scan_with_history))
            stored_bytes = stores[-1].size() - empty
        finally:
            for store in stores:
                store.drop()
        instruction_lines = count_instructions(args, path, workdir) if args.instructions else []
    print(f"file: {events:,} events ({args.file or args.source}), {counted:,} counted; best of {args.runs} runs; "
          f"history in {'PostgreSQL' if args.history_db else 'SQLite'}")
    print(f"{'':38}{'wall events/s':>16}{'cpu events/s':>16}")
    for name, (wall, cpu) in (("kubeguard scan", full), ("kubeguard scan, keeping history --db", history)):
        print(f"{name:38}{events / wall:>16,.0f}{events / cpu:>16,.0f}")
    wall_cost, cpu_cost = history[0] / full[0] - 1, history[1] / full[1] - 1
    print(f"history cost: {wall_cost:+.1%} wall, {cpu_cost:+.1%} cpu of the scan without it (budget +15%)")
    print(f"activity store: {stored_bytes / events:,.1f} MB per million events ({stored_bytes:,} bytes)")
    for line in instruction_lines:
        print(line)


def count_instructions(args: argparse.Namespace, path: Path, workdir: Path) -> list[str]:
    """Lines to print: the scan with and without history in instructions, each counted by callgrind in a
    child of its own (both at once: two cores, and each count is the same whatever else runs)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return ["instructions: valgrind is not installed (apt-get install valgrind); not counted"]
    children = {}
    for mode in ("scan", "history"):
        command = [valgrind, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=_operator_call",
                   f"--callgrind-out-file={workdir / f'callgrind-{mode}.out'}", sys.executable, __file__,
                   "--count-child", mode, "--file", str(path)]
        if args.history_db:
            command += ["--history-db", args.history_db]
        children[mode] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    counted = {}
    for mode, child in children.items():
        _, errors = child.communicate()
        found = re.search(r"Collected : (\d+)", errors)
        if child.returncode != 0 or found is None:
            return [f"instructions: the {mode} child failed ({child.returncode}): {errors.strip()[-500:]}"]
        counted[mode] = int(found.group(1))
    scan, history = counted["scan"], counted["history"]
    return [
        f"instructions (callgrind): scan {scan:,}, keeping history {history:,}",
        f"history cost: {history / scan - 1:+.1%} instructions of the scan without it (budget +15%)",
    ]


def count_child(args: argparse.Namespace) -> None:
    """Under callgrind: warm up, then run the one scan to count inside ``operator.call``."""
    settings = Settings()
    settings.intel.use_default_feeds = False
    options = default_pipeline_options(settings)
    options["describe_ip"]("8.8.8.8")  # the geo database, loaded by the first public address a scan describes
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        warm = workdir / "warm.jsonl"
        with args.file.open("rb") as source, warm.open("wb") as out:
            for number, line in enumerate(source):
                if number == 2000:
                    break
                out.write(line)
        run_scan([str(warm)], settings, pipeline_options=options, history_url=f"sqlite:///{workdir / 'warm.db'}",
                 split=False)
        store = HistoryStore(args.history_db, workdir / "history.db") if args.count_child == "history" else None
        gc.collect()
        try:
            operator.call(run_scan, [str(args.file)], settings, pipeline_options=options,
                          history_url=store.url if store else None, split=False)
        finally:
            if store is not None:
                store.drop()


class HistoryStore:
    """Where one measured run keeps its history: a new SQLite file, or a new PostgreSQL schema."""

    def __init__(self, postgres_url: str | None, sqlite_file: Path) -> None:
        self.schema = ""
        if postgres_url is None:
            self.file = sqlite_file
            self.url = f"sqlite:///{sqlite_file}"
            return
        import psycopg

        self.schema = f"kg_bench_{uuid.uuid4().hex[:12]}"
        self.admin = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        self.admin.execute(f'CREATE SCHEMA "{self.schema}"')
        separator = "&" if "?" in postgres_url else "?"
        self.url = f"{postgres_url}{separator}options=-csearch_path%3D{self.schema}"
        # A PostgreSQL store is long-lived: creating its schema (most of a second of server work) is not
        # part of what a scan costs. A SQLite file is new for each run, as with ``scan --db new.db``.
        from kubeguard.store.database import open_engine

        open_engine(self.url).dispose()

    def size(self) -> int:
        if not self.schema:
            if not self.file.exists():  # the empty store of a SQLite run
                from kubeguard.store.database import open_engine

                open_engine(self.url).dispose()
            return store_bytes(self.file)
        query = ("SELECT coalesce(sum(pg_total_relation_size(format('%%I.%%I', schemaname, tablename))), 0) "
                 "FROM pg_tables WHERE schemaname = %s")
        return int(self.admin.execute(query, (self.schema,)).fetchone()[0])

    def drop(self) -> None:
        if self.schema:
            self.admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            self.admin.close()
            self.schema = ""


def guardduty_detectors() -> list:
    """The default detectors minus kubeguard's extensions: what scanning costs for GuardDuty's types alone."""
    from kubeguard.detectors.registry import default_detectors
    from kubeguard.findings.types import CATALOGUE

    return [d for d in default_detectors()
            if not d.finding_types or not all(CATALOGUE[t].extension for t in d.finding_types)]


def empty_store(workdir: Path) -> Path:
    from kubeguard.store.database import open_engine

    path = workdir / "empty.db"
    open_engine(f"sqlite:///{path}").dispose()
    return path


def store_bytes(path: Path) -> int:
    """Pages in use of a SQLite store (the write-ahead log checkpointed first)."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * conn.execute("PRAGMA page_size").fetchone()[0]


if __name__ == "__main__":
    main()
