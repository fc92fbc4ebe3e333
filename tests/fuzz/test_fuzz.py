"""Each fuzz target runs a bounded, seeded number of coverage-guided inputs (atheris) in the suite.

A longer run is ``scripts/fuzz TARGET SECONDS``. A failure prints the crashing input's file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.seeds import write_seeds
from fuzz.targets import TARGETS

pytest.importorskip("atheris")

RUN = Path(__file__).resolve().parent / "run.py"
#: Inputs per target in the suite: enough to get past the seeds into mutations, cheap enough for CI.
RUNS = 1500


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_survives_a_seeded_run(target, tmp_path):
    corpus = write_seeds(target, tmp_path / "corpus")
    result = subprocess.run(
        [sys.executable, str(RUN), target, f"-runs={RUNS}", "-seed=1", "-max_len=65536", "-timeout=20",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
