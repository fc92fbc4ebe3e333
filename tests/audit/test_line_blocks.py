"""JSON Lines are read in blocks; where the blocks fall changes nothing: not the events, not the rejects.

A line longer than a block is held in pieces and joined once (not copied once per block), and a line
longer than ``MAX_RECORD_BYTES`` is rejected on its own line number, however the blocks cut it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeguard.audit import decode
from kubeguard.audit.decode import EventReader

LAB_LOG = Path(__file__).resolve().parents[2] / "examples" / "lab-audit.jsonl.gz"
LINES = gzip.decompress(LAB_LOG.read_bytes()).splitlines()[:60]


def read(data: bytes) -> tuple[list[tuple[str, str]], list[str], int]:
    reader = EventReader()
    events = [(e.auditID, e.stage) for e in reader.read_bytes(data, source="t")]
    return events, [str(r) for r in reader.rejects.kept], reader.records


@settings(max_examples=40, deadline=None)
@given(
    block=st.integers(min_value=1, max_value=4096),
    long_lines=st.lists(st.integers(min_value=0, max_value=30_000), max_size=4),
    trailing_newline=st.booleans(),
)
def test_block_size_changes_nothing(block: int, long_lines: list[int], trailing_newline: bool) -> None:
    lines = list(LINES)
    for offset, size in enumerate(long_lines):  # some over the limit below, some under
        lines.insert(offset * 7 + 1, b'{"auditID": "' + b"y" * size + b'", "verb": "get"}')
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decode, "MAX_RECORD_BYTES", 10_000)
        expected = read(data)
        patch.setattr(decode, "BLOCK_BYTES", block)
        assert read(data) == expected
    assert expected[0], "the lab lines are events"
    assert len(expected[1]) == sum(1 for size in long_lines if size + 30 > 10_000)
