"""Property tests: nothing a file can contain makes the decoder raise; it can only reject."""

from __future__ import annotations

import gzip
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeguard.audit.decode import decode_bytes

from .test_envelopes import POD_CREATE

VALID = json.dumps(POD_CREATE).encode()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["kind", "items", "verb", "auditID", "user", "objectRef", "responseStatus", "message",
                         "events", "logEvents", "protoPayload", "records", "properties", "log", "category",
                         "requestObject", "sourceIPs", "x"]) | st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _never_raises(data: bytes, **options) -> None:
    result = decode_bytes(data, **options)
    assert all(r.reason and r.line >= 1 for r in result.rejects)


@FAST
@given(st.binary(max_size=300))
def test_random_bytes(data):
    _never_raises(data)
    _never_raises(b"\x1f\x8b" + data)


@FAST
@given(json_values, st.sampled_from([None, "native", "cloudwatch", "gke", "aks"]))
def test_random_json_values(value, input_format):
    data = json.dumps(value).encode()
    _never_raises(data, input_format=input_format)
    _never_raises(data + b"\n" + data, input_format=input_format)


@FAST
@given(st.integers(min_value=0, max_value=len(VALID)))
def test_truncated_valid_event(cut):
    _never_raises(VALID[:cut])
    if cut == 1:
        return  # a lone "{" line opens a pretty-printed document by design; the whole input is that document
    result = decode_bytes(VALID[:cut] + b"\n" + VALID)
    assert len(result.rejects) == (0 if cut in (0, len(VALID)) else 1)
    assert [e.auditID for e in result.events][-1:] == ["5b9e-pod"]


@FAST
@given(st.integers(min_value=1, max_value=len(gzip.compress(VALID * 3)) - 1))
def test_truncated_gzip(cut):
    _never_raises(gzip.compress(VALID + b"\n" + VALID + b"\n" + VALID)[:cut])


@FAST
@given(st.lists(st.sampled_from([VALID, b"{", b"[", b"]", b"}", b"\n", b"null", b'{"items": 5}', b"\xff"]),
                max_size=12))
def test_spliced_fragments(parts):
    _never_raises(b"".join(parts))
