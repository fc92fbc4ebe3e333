"""A webhook batch is parsed once: sniffing the format must not parse the body again (issue 14).

The sniffer reads only the keys that tell the formats apart; its answers must match the rule it replaced
(a full ``orjson.loads`` and a look at the top-level keys), which :func:`_reference_format` restates.
"""

from __future__ import annotations

import json

import msgspec
import orjson
from hypothesis import given
from hypothesis import strategies as st

from kubeguard.audit import decode
from kubeguard.audit.decode import decode_bytes, sniff_record_format
from tests.audit.test_decode import EVENT, _event


def _reference_format(data: bytes) -> str:
    """The format rule as it was written over a fully parsed document."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "native"
    if isinstance(document, list):
        document = document[0] if document and isinstance(document[0], dict) else {}
    if not isinstance(document, dict):
        return "native"
    if "protoPayload" in document:
        return "gke"
    if "records" in document or ("properties" in document and "category" in document):
        return "aks"
    if "message" in document or "logEvents" in document or (
        "events" in document and isinstance(document["events"], list)
    ):
        return "cloudwatch"
    return "native"


class _Counting:
    """Wraps a msgspec decoder and counts its calls."""

    def __init__(self, inner: msgspec.json.Decoder, calls: list[str], name: str) -> None:
        self.inner, self.calls, self.name = inner, calls, name

    def decode(self, data: bytes) -> object:
        self.calls.append(self.name)
        return self.inner.decode(data)


def _event_list(count: int) -> bytes:
    items = [_event(f"id-{i}") for i in range(count)]
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


def test_an_event_list_body_is_decoded_once_and_never_by_orjson(monkeypatch):
    calls: list[str] = []
    for name in ("_native_decoder", "_first_record_decoder", "_format_keys_decoder", "_native_array_decoder"):
        monkeypatch.setattr(decode, name, _Counting(getattr(decode, name), calls, name))

    def counting_loads(data: bytes) -> object:
        calls.append("orjson.loads")
        return json.loads(data)

    monkeypatch.setattr(decode.orjson, "loads", counting_loads)
    result = decode_bytes(_event_list(50), source="webhook")
    assert [e.auditID for e in result.events] == [f"id-{i}" for i in range(50)]
    assert result.rejects == []
    assert calls == ["_first_record_decoder"]


def test_jsonl_of_event_lists_reads_every_line_after_the_first_decoded_one():
    line = _event_list(3)
    data = line + b"\n" + b"{broken\n" + line + b"\n"
    result = decode_bytes(data, source="batch")
    assert [e.auditID for e in result.events] == ["id-0", "id-1", "id-2"] * 2
    assert [(r.source, r.line) for r in result.rejects] == [("batch", 2)]


def test_a_first_line_that_is_a_single_event_yields_the_same_type_as_the_others():
    data = orjson.dumps(EVENT) + b"\n" + orjson.dumps(_event("id-2")) + b"\n"
    events = decode_bytes(data).events
    assert [e.auditID for e in events] == ["id-1", "id-2"]
    assert {type(e) for e in events} == {type(events[1])}
    assert "protoPayload" not in type(events[0]).__struct_fields__


def test_an_event_list_with_a_format_key_is_read_in_that_format_as_before():
    body = orjson.dumps({"kind": "EventList", "items": [EVENT], "message": "not an audit record"})
    assert sniff_record_format(body) == "cloudwatch"
    result = decode_bytes(body)
    assert result.events == [] and len(result.rejects) == 1


_KEYS = ("protoPayload", "records", "properties", "category", "message", "logEvents", "events", "auditID", "kind")
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_RECORDS = st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), _VALUES, max_size=5)


@given(document=_RECORDS | st.lists(_RECORDS | _VALUES, max_size=3) | _VALUES)
def test_the_sniffer_agrees_with_the_full_parse_rule(document):
    data = orjson.dumps(document)
    assert sniff_record_format(data) == _reference_format(data)


@given(data=st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_the_sniffer_agrees_on_arbitrary_bytes(data):
    assert sniff_record_format(data) == _reference_format(data)
