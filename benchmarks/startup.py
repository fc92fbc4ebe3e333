"""Start-up time of ``kubeguard --help`` and of ``kubeguard scan`` over a one-event file.

Each command runs as a whole process (interpreter start, imports, argument parsing, the work, exit), and
so do two baselines in the same run, interleaved round by round so that a busy machine slows them all alike:

* ``python -c pass``: the interpreter alone, the floor no Python command can go under;
* ``python -c "import typer"``: the CLI framework alone, the floor for any typer command.

The best wall time of several rounds is reported for each, with its ratio to both baselines. The target
(issue 14) is 0.25 s wall for each kubeguard command; on a loaded machine read the ratios, not the seconds.
``--importtime`` also prints the slowest top-level imports of each command (``python -X importtime``).

    python benchmarks/startup.py [--rounds 7] [--importtime]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "lab-audit.jsonl.gz"
TARGET_SECONDS = 0.25


def one_event_file(directory: Path) -> Path:
    """The first event of the lab log, alone in a file: the smallest real scan."""
    with gzip.open(SAMPLE, "rb") as lines:
        first = next(iter(lines))
    path = directory / "one-event.jsonl"
    path.write_bytes(first)
    return path


def commands(event_file: Path) -> dict[str, list[str]]:
    python = sys.executable
    cli = [python, "-m", "kubeguard.cli"]
    return {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import typer'": [python, "-c", "import typer"],
        "kubeguard --help": [*cli, "--help"],
        "kubeguard scan (1 event)": [*cli, "scan", str(event_file), "--format", "jsonl", "--output", "/dev/null",
                                     "--quiet"],
    }


def wall_time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def slowest_imports(argv: list[str], count: int = 8) -> list[tuple[int, str]]:
    """Top-level imports (those made by the program itself) ranked by cumulative microseconds."""
    run = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, check=True)
    ranked = []
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith(" ") or name.startswith("  "):
            continue  # only top-level imports: one space before the name
        ranked.append((int(cumulative), name.strip()))
    return sorted(ranked, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--importtime", action="store_true", help="Also show each command's slowest imports.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = commands(one_event_file(Path(scratch)))
        for argv in runs.values():
            wall_time(argv)  # warm the file cache and the bytecode cache
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.rounds):
            for name, argv in runs.items():
                best[name] = min(best[name], wall_time(argv))
        bare, typer_only = best["python -c pass"], best["python -c 'import typer'"]
        print(f"best of {args.rounds} interleaved rounds, wall seconds")
        print(f"{'command':28} {'seconds':>8} {'× pass':>8} {'× typer':>8}")
        for name, seconds in best.items():
            verdict = ""
            if name.startswith("kubeguard"):
                verdict = "  ok" if seconds <= TARGET_SECONDS else f"  over {TARGET_SECONDS} s"
            print(f"{name:28} {seconds:8.3f} {seconds / bare:8.2f} {seconds / typer_only:8.2f}{verdict}")
        if args.importtime:
            for name, argv in runs.items():
                if name.startswith("kubeguard"):
                    print(f"\nslowest top-level imports of {name} (cumulative ms):")
                    for micros, module in slowest_imports(argv):
                        print(f"  {micros / 1000:7.1f}  {module}")


if __name__ == "__main__":
    main()
