"""Start-up time of ``kubeguard --help`` and of ``kubeguard scan`` over a one-event file.

Each command runs as a whole process (interpreter start, imports, argument parsing, the work, exit), and
so do two baselines in the same run, interleaved round by round so that a busy machine slows them all alike:

* ``python -c pass``: the interpreter alone, the floor no Python command can go under;
* ``python -c "import typer"``: the CLI framework alone, the floor for any typer command.

The best wall time of several rounds is reported for each, with its ratio to both baselines, and the best
CPU time (user + system of the child, from ``wait4``), which a busy machine disturbs less. The target
(issue 14) is 0.25 s wall for each kubeguard command; on a loaded machine read the ratios, not the seconds.
``--importtime`` also prints the slowest top-level imports of each command (``python -X importtime``).

Bytecode: the warm-up runs write kubeguard's ``__pycache__`` even when ``PYTHONDONTWRITEBYTECODE`` is set
in the environment (as an installed package has it), so the rounds measure start-up, not compiling.
``--no-bytecode-cache`` measures the other case, an editable install under ``PYTHONDONTWRITEBYTECODE=1``:
kubeguard runs from a copy of its sources without ``__pycache__`` and every run compiles what it imports.

    python benchmarks/startup.py [--rounds 7] [--importtime] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
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
    """Each measured command; ``-m kubeguard.cli`` is what the ``kubeguard`` script runs."""
    python = sys.executable
    cli = [python, "-m", "kubeguard.cli"]
    return {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import typer'": [python, "-c", "import typer"],
        "kubeguard --help": [*cli, "--help"],
        "kubeguard scan (1 event)": [*cli, "scan", str(event_file), "--format", "jsonl", "--output", "/dev/null",
                                     "--quiet"],
    }


def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one whole process."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return wall, usage.ru_utime + usage.ru_stime


def environments(scratch: Path, cold: bool) -> tuple[dict[str, str], dict[str, str]]:
    """The environment of the warm-up runs and of the measured rounds."""
    measured = dict(os.environ)
    if not cold:
        warm_up = {name: value for name, value in measured.items() if name != "PYTHONDONTWRITEBYTECODE"}
        return warm_up, measured
    import kubeguard

    copy = scratch / "src"
    shutil.copytree(Path(kubeguard.__file__).parent, copy / "kubeguard",
                    ignore=shutil.ignore_patterns("__pycache__"))
    measured["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy), measured.get("PYTHONPATH")]))
    measured["PYTHONDONTWRITEBYTECODE"] = "1"
    return measured, measured


def slowest_imports(argv: list[str], env: dict[str, str], count: int = 8) -> list[tuple[int, str]]:
    """Top-level imports (those made by the program itself) ranked by cumulative microseconds."""
    run = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True,
                         check=True)
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
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="Run kubeguard from sources with no __pycache__, as under PYTHONDONTWRITEBYTECODE=1.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = commands(one_event_file(Path(scratch)))
        warm_up, measured = environments(Path(scratch), args.no_bytecode_cache)
        for argv in runs.values():
            timed_run(argv, warm_up)  # warm the file cache (and, unless told not to, the bytecode cache)
        wall = dict.fromkeys(runs, float("inf"))
        cpu = dict.fromkeys(runs, float("inf"))
        for _ in range(args.rounds):
            for name, argv in runs.items():
                seconds, cpu_seconds = timed_run(argv, measured)
                wall[name], cpu[name] = min(wall[name], seconds), min(cpu[name], cpu_seconds)
        bare, typer_only = wall["python -c pass"], wall["python -c 'import typer'"]
        cpu_bare, cpu_typer = cpu["python -c pass"], cpu["python -c 'import typer'"]
        cache = "no bytecode cache for kubeguard" if args.no_bytecode_cache else "bytecode cached"
        print(f"best of {args.rounds} interleaved rounds ({cache}; load average {os.getloadavg()[0]:.1f})")
        print(f"{'command':28} {'wall s':>8} {'× pass':>8} {'× typer':>8} {'CPU s':>8} {'× pass':>8} {'× typer':>8}")
        for name, seconds in wall.items():
            verdict = ""
            if name.startswith("kubeguard"):
                verdict = "  ok" if seconds <= TARGET_SECONDS else f"  over {TARGET_SECONDS} s"
            print(f"{name:28} {seconds:8.3f} {seconds / bare:8.2f} {seconds / typer_only:8.2f} "
                  f"{cpu[name]:8.3f} {cpu[name] / cpu_bare:8.2f} {cpu[name] / cpu_typer:8.2f}{verdict}")
        if args.importtime:
            for name, argv in runs.items():
                if name.startswith("kubeguard"):
                    print(f"\nslowest top-level imports of {name} (cumulative ms):")
                    for micros, module in slowest_imports(argv, measured):
                        print(f"  {micros / 1000:7.1f}  {module}")


if __name__ == "__main__":
    main()
