"""Peak memory of ``kubeguard scan`` as the input grows: it must hold state, never the input (issue 14).

The input is the real kube-apiserver log in ``examples/`` replayed as a growing fleet. Each replay (an
"epoch") is the whole lab log with

* fresh auditIDs, so de-duplication keeps every copy (and its window fills as it would in production);
* timestamps moved ``--step`` seconds later than the previous epoch's, so the anomaly learner leaves its
  learning period (7 days by default) part-way through the larger files and windows keyed on time advance;
* the human principals (``kubernetes-admin``, ``alice``, ``mallory``) renamed to a new generation every
  ``--principal-life`` epochs, and every human call coming from a new source IP each epoch, so that
  first-seen pairs, per-principal profiles and findings keep growing as they do in a fleet with churn.

The file is written as a stream and extended in place from one size to the next (nothing of it is held in
memory), and each size is scanned by a fresh ``kubeguard scan`` process. Two peaks are reported: the
kernel's ``ru_maxrss`` from ``wait4`` (the largest single process: the scan, or one of the processes it
forked and reaped), and the largest sum of the proportional set sizes (PSS: pages shared after a fork
counted once) of the scan and all its descendants, sampled from ``/proc`` every 0.2 s (what a scan that
uses several processes costs the machine). The table shows
them per size with their ratio to the smallest size and to the scan of a one-event file (the interpreter
and imports), so a bounded scan reads as a flat column whatever the size. The file is deleted at the end.

    python benchmarks/memory.py [--sizes 0.5,1,2,5,10] [--dir /work/bench] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "lab-audit.jsonl.gz"
GIB = 1 << 30
#: Principals renamed per generation: people, whose activity a real fleet keeps renewing.
HUMANS = ("kubernetes-admin", "alice", "mallory")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SLOT = "\x00"


class Replay:
    """The lab log as a template: each line split around the fields an epoch rewrites."""

    def __init__(self, step_seconds: float, principal_life: int) -> None:
        self.step = timedelta(seconds=step_seconds)
        self.principal_life = principal_life
        self.lines: list[tuple[list[str], list[tuple[str, object]]]] = []
        raw = gzip.decompress(SAMPLE.read_bytes()).decode().splitlines()
        events = [orjson.loads(line) for line in raw]
        self.start = min(_parse(e["requestReceivedTimestamp"]) for e in events)
        for line, event in zip(raw, events, strict=True):
            self.lines.append(self._template(line, event))

    def _template(self, line: str, event: dict) -> tuple[list[str], list[tuple[str, object]]]:
        slots: list[tuple[str, object]] = []

        def cut(text: str, old: str, kind: str, value: object) -> str:
            if old not in text:
                return text
            slots.append((kind, value))
            return text.replace(old, f"{SLOT}{len(slots) - 1}{SLOT}", 1)

        line = cut(line, f'"auditID":"{event["auditID"]}"', "id", event["auditID"])
        for key in ("requestReceivedTimestamp", "stageTimestamp"):
            stamp = event[key]
            line = cut(line, f'"{key}":"{stamp}"', key, _parse(stamp) - self.start)
        user = event.get("user", {}).get("username")
        if user in HUMANS:
            line = cut(line, f'"username":"{user}"', "user", user)
            ips = orjson.dumps(event.get("sourceIPs", [])).decode()
            line = cut(line, f'"sourceIPs":{ips}', "ip", None)
        pieces = line.split(SLOT)  # text, slot number, text, slot number, ..., text
        return pieces[0::2], [slots[int(number)] for number in pieces[1::2]]

    def epoch(self, number: int) -> bytes:
        """One replay of the log, ``number`` epochs on."""
        shift = self.step * number
        generation = number // self.principal_life
        ip = f'"sourceIPs":["198.{18 + (number >> 16) % 2}.{(number >> 8) & 255}.{number & 255}"]'
        prefix = f"{number:08x}"
        out: list[str] = []
        for parts, slots in self.lines:
            pieces = [parts[0]]
            for (kind, value), tail in zip(slots, parts[1:], strict=True):
                if kind == "id":
                    pieces.append(f'"auditID":"{prefix}{value[8:]}"')
                elif kind == "user":
                    pieces.append(f'"username":"{value}-{generation}"')
                elif kind == "ip":
                    pieces.append(ip)
                else:
                    when = self.start + value + shift
                    pieces.append(f'"{kind}":"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond:06d}Z"')
                pieces.append(tail)
            out.append("".join(pieces))
        out.append("")
        return "\n".join(out).encode()


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def extend(path: Path, replay: Replay, target_bytes: int, first_epoch: int) -> tuple[int, int]:
    """Append epochs to ``path`` until it holds ``target_bytes``; the next epoch and the events written."""
    epoch, events = first_epoch, 0
    with path.open("ab") as out:
        size = out.tell()
        while size < target_bytes:
            chunk = replay.epoch(epoch)
            out.write(chunk)
            size += len(chunk)
            events += len(replay.lines)
            epoch += 1
    return epoch, events


PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes(pid: int) -> int:
    """The proportional set size of ``pid`` (its resident set where the kernel has no smaps_rollup)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0  # it has exited


def tree_rss(root: int) -> int:
    """Resident bytes (PSS) of ``root`` and every process descending from it, now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(resident_bytes(pid) for pid in family)


def scan_peak(path: Path, findings: Path) -> tuple[float, int, int]:
    """Wall seconds, largest single-process RSS and largest sampled process-tree RSS (bytes) of one scan,
    which writes its findings (the output it holds until the end, one JSON line each) to ``findings``."""
    argv = [sys.executable, "-m", "kubeguard.cli", "scan", str(path), "--format", "jsonl", "--output", str(findings),
            "--quiet", "--no-default-feeds"]
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    tree_peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal tree_peak
        while not done.wait(0.2):
            tree_peak = max(tree_peak, tree_rss(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode not in (0, 3):
        raise SystemExit(f"scan of {path} failed with exit code {child.returncode}")
    largest = usage.ru_maxrss * 1024  # Linux reports kilobytes
    return seconds, largest, max(tree_peak, largest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5,1,2,5,10", help="File sizes in GiB, ascending.")
    parser.add_argument("--dir", type=Path, default=Path("/work/bench"), help="Where the big file is written.")
    parser.add_argument("--step", type=float, default=300.0, help="Seconds of event time between epochs.")
    parser.add_argument("--principal-life", type=int, default=4, help="Epochs before people are renamed.")
    parser.add_argument("--keep", action="store_true", help="Keep the generated file.")
    args = parser.parse_args()
    sizes = sorted(float(s) for s in args.sizes.split(","))
    need = sizes[-1] * GIB * 1.05
    free = shutil.disk_usage(args.dir).free
    if free < need:
        raise SystemExit(f"{args.dir}: {free / GIB:.1f} GiB free, the largest size needs {need / GIB:.1f} GiB")
    replay = Replay(args.step, args.principal_life)
    path = args.dir / f"memory-bench-{os.getpid()}.jsonl"
    one = args.dir / f"memory-bench-{os.getpid()}-one.jsonl"
    found = args.dir / f"memory-bench-{os.getpid()}-findings.jsonl"
    one.write_bytes(replay.epoch(0).split(b"\n", 1)[0] + b"\n")
    rows = []
    try:
        _, floor, _ = scan_peak(one, found)
        epoch = events = 0
        for size in sizes:
            epoch, added = extend(path, replay, int(size * GIB), epoch)
            events += added
            seconds, peak, tree = scan_peak(path, found)
            with found.open("rb") as lines:
                findings = sum(1 for _ in lines)
            rows.append((size, events, epoch, seconds, peak, tree, findings))
            print(f"  {size:g} GiB scanned: {events:,} events in {seconds:.0f} s, {findings:,} findings, peak RSS "
                  f"{peak / 2**20:.0f} MiB (process tree PSS {tree / 2**20:.0f} MiB)", file=sys.stderr, flush=True)
    finally:
        one.unlink(missing_ok=True)
        found.unlink(missing_ok=True)
        if not args.keep:
            path.unlink(missing_ok=True)
    smallest, smallest_tree = rows[0][4], rows[0][5]
    days = args.step / 86400
    print(f"peak RSS of a one-event scan (interpreter, imports): {floor / 2**20:.0f} MiB")
    print(f"{'size':>8} {'events':>11} {'event days':>10} {'people':>7} {'findings':>8} {'seconds':>8} "
          f"{'peak RSS':>10} {'× smallest':>10} {'× one-event':>11} {'tree PSS':>10} {'× smallest':>10}")
    for size, count, epochs, seconds, peak, tree, findings in rows:
        people = len(HUMANS) * -(-epochs // args.principal_life)
        print(f"{size:6g} G {count:11,} {epochs * days:10.1f} {people:7,} {findings:8,} {seconds:8.0f} "
              f"{peak / 2**20:6.0f} MiB "
              f"{peak / smallest:10.2f} {peak / floor:11.2f} {tree / 2**20:6.0f} MiB {tree / smallest_tree:10.2f}")


if __name__ == "__main__":
    main()
