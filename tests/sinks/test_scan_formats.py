"""``kubeguard scan --format`` prints the sinks' formats, one document (or line) per finding."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_cli_scan import kubeguard

from kubeguard.cli.scan import OUTPUT_FORMATS
from kubeguard.findings.formats import FORMATS, render

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab-audit.jsonl.gz"


def test_text_prints_one_line_per_finding(lab_findings, tmp_path):
    result = kubeguard(str(LAB), "--format", "text", "-q", home=tmp_path)
    assert result.stdout.decode().splitlines() == [render("text", f) for f in lab_findings]


def test_the_cli_lists_every_finding_format():
    assert OUTPUT_FORMATS[-len(FORMATS):] == FORMATS


@pytest.fixture(scope="module")
def lab_findings(tmp_path_factory) -> list[dict]:
    result = kubeguard(str(LAB), "--format", "guardduty", "-q", home=tmp_path_factory.mktemp("home"))
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("name", ["asff", "ocsf", "eventbridge"])
def test_scan_prints_each_finding_in_the_format(name, lab_findings, tmp_path):
    result = kubeguard(str(LAB), "--format", name, "-q", home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(lab_findings) > 0
    for line, finding in zip(lines, lab_findings, strict=True):
        document = orjson.loads(line)
        # A scan stamps createdAt/updatedAt with its own clock: take this run's, the rest must be identical.
        if name == "asff":
            stamps = {"createdAt": document["CreatedAt"], "updatedAt": document["UpdatedAt"]}
        elif name == "ocsf":
            stamps = {k: document["unmapped"]["guardduty"][k] for k in ("createdAt", "updatedAt")}
        else:
            stamps = {k: document["detail"][k] for k in ("createdAt", "updatedAt")}
        expected = render(name, {**finding, **stamps})
        if name == "eventbridge":
            document.pop("time"), expected.pop("time")
        assert document == expected
