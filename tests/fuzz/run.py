"""Run one fuzz target under atheris (coverage-guided): ``python tests/fuzz/run.py TARGET [libFuzzer flags]``.

The corpus is seeded from the repository's test data (``tests/fuzz/seeds.py``); a crash leaves its input in
the working directory as libFuzzer's ``crash-*`` file, to be replayed with the same command and the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["kubeguard"]):
    from targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: run.py TARGET [libFuzzer flags]; targets: {', '.join(TARGETS)}")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
