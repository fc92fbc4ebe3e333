"""Where keeping history costs, in instructions: a deterministic split of ``scan --db``'s overhead.

Wall and CPU times on a shared two-core machine move by ±20 %, more than a change to the recorder's hot
path does, so this counts instructions under callgrind instead. Each mode runs in a fresh process that first
warms up as ``benchmarks/scan.py --history-only`` does (imports, intel, the geo database, one small scan with
and one without history) and then scans ``FILE`` once:

* ``warm``: the warm-up alone, subtracted from every other mode;
* ``plain``: the scan without history;
* ``history``: the scan keeping history in a new SQLite file;
* ``no-observe``: history kept, but the recorder counts nothing (the store's fixed cost: schema, findings);
* ``no-flush``: the recorder counts every event but writes nothing (its per-event cost, with the above).

So observe = no-flush - no-observe, flush = history - no-flush, fixed = no-observe - plain. A 40,000-event
slice takes a few minutes per mode under valgrind:

    python benchmarks/history_instructions.py FILE          # every mode, two at a time, and the split
    python benchmarks/history_instructions.py FILE MODE     # one mode, in-process (what valgrind runs)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scan import build_sim_file  # benchmarks/scan.py, beside this script

MODES = ("warm", "plain", "history", "no-observe", "no-flush")


def run_mode(path: str, mode: str) -> None:
    """The warm-up, then ``mode``'s scan of ``path``."""
    from kubeguard.config import Settings
    from kubeguard.graph import recorder
    from kubeguard.scan import default_pipeline_options, run_scan

    settings = Settings()
    settings.intel.use_default_feeds = False
    options = default_pipeline_options(settings)
    with tempfile.TemporaryDirectory() as scratch:
        warm = Path(scratch) / "warm.jsonl"
        build_sim_file(warm, 2000)
        run_scan([str(warm)], settings, pipeline_options=options, split=False)
        run_scan([str(warm)], settings, pipeline_options=options, split=False, history_url=f"sqlite:///{scratch}/w.db")
        options["describe_ip"]("8.8.8.8")  # the geo database, which a scan with findings loads anyway
        if mode == "warm":
            return
        if mode == "no-observe":
            recorder.ActivityRecorder.observe = lambda self, event: None  # type: ignore[method-assign]
        elif mode == "no-flush":
            recorder.ActivityRecorder._flush = lambda self, conn: self.discard()  # type: ignore[method-assign]
        history = None if mode == "plain" else f"sqlite:///{scratch}/h.db"
        run_scan([path], settings, pipeline_options=options, split=False, history_url=history)


def instructions(path: str, mode: str) -> int:
    """Instructions of one mode's process, counted by callgrind."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, path, mode],
        capture_output=True, text=True, env=env, check=True,
    )
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    if len(sys.argv) == 3:
        return run_mode(sys.argv[1], sys.argv[2])
    path = sys.argv[1]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(MODES, pool.map(lambda mode: instructions(path, mode), MODES), strict=True))
    scan = counts["plain"] - counts["warm"]
    parts = {
        "history, all": counts["history"] - counts["plain"],
        "fixed (schema, findings)": counts["no-observe"] - counts["plain"],
        "observe (per event)": counts["no-flush"] - counts["no-observe"],
        "flush (roll-ups, SQL)": counts["history"] - counts["no-flush"],
    }
    print(f"{path}: scan without history {scan:,} instructions")
    for name, value in parts.items():
        print(f"  {name:28}{value:>16,}  {value / scan:+.1%}")


if __name__ == "__main__":
    main()
