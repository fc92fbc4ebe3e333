"""Decoding audit events from every layout users have: Event, EventList, array, JSONL, gzip, directories."""

from __future__ import annotations

import gzip
import json

import pytest

from kubeguard.audit.decode import EventReader, UnknownFormatError, decode_bytes

EVENT = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "id-1",
    "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/dev/secrets", "verb": "list",
    "user": {"username": "alice", "groups": ["dev", "system:authenticated"]}, "sourceIPs": ["10.1.2.3"],
    "userAgent": "kubectl/v1.32.4", "objectRef": {"resource": "secrets", "namespace": "dev", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200}, "annotations": {"authorization.k8s.io/decision": "allow"},
    "requestReceivedTimestamp": "2026-11-27T17:48:00.100000Z", "stageTimestamp": "2026-11-27T17:48:00.120000Z",
}


def _event(audit_id: str, **changes) -> dict:
    return {**EVENT, "auditID": audit_id, **changes}


def _ids(data: bytes, **options) -> list[str]:
    result = decode_bytes(data, **options)
    assert result.rejects == []
    return [e.auditID for e in result.events]


def test_single_event_decodes_every_field_detection_reads():
    [event] = decode_bytes(json.dumps(EVENT).encode()).events
    assert (event.verb, event.resource, event.namespace, event.status_code) == ("list", "secrets", "dev", 200)
    assert event.user.username == "alice" and event.user.groups == ["dev", "system:authenticated"]
    assert event.caller_ip == "10.1.2.3" and event.userAgent == "kubectl/v1.32.4"
    assert event.succeeded and event.authorized
    assert event.event_time == "2026-11-27T17:48:00.120000Z"
    assert event.cluster == "default"


def test_pretty_printed_event():
    assert _ids(json.dumps(EVENT, indent=2).encode()) == ["id-1"]


def test_event_list_with_items_that_carry_no_kind():
    items = [{k: v for k, v in _event(f"i{n}").items() if k not in ("kind", "apiVersion")} for n in range(3)]
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})
    assert _ids(body.encode()) == ["i0", "i1", "i2"]
    assert _ids(json.dumps(json.loads(body), indent=1).encode()) == ["i0", "i1", "i2"]


def test_json_array_of_events_and_event_lists():
    array = [_event("a"), {"kind": "EventList", "items": [_event("b"), _event("c")]}, _event("d")]
    assert _ids(json.dumps(array).encode()) == ["a", "b", "c", "d"]
    assert _ids(json.dumps(array, indent=4).encode()) == ["a", "b", "c", "d"]


def test_jsonl_mixing_events_and_event_lists_with_blank_lines():
    lines = [json.dumps(_event("a")), "", json.dumps({"kind": "EventList", "items": [_event("b"), _event("c")]}),
             "   ", json.dumps(_event("d"))]
    assert _ids("\n".join(lines).encode()) == ["a", "b", "c", "d"]


def test_gzip_of_jsonl_and_of_a_single_document():
    jsonl = b"\n".join(json.dumps(_event(i)).encode() for i in "abc") + b"\n"
    assert _ids(gzip.compress(jsonl)) == ["a", "b", "c"]
    assert _ids(gzip.compress(json.dumps([_event("x")], indent=2).encode())) == ["x"]


def test_v1beta1_event_from_falco_corpus(falco_dir):
    [event] = decode_bytes((falco_dir / "anonymous_creates_namespace_foo.json").read_bytes()).events
    assert b"audit.k8s.io/v1beta1" in (falco_dir / "anonymous_creates_namespace_foo.json").read_bytes()
    assert (event.verb, event.resource, event.name) == ("create", "namespaces", "foo")
    assert event.user.username == "system:anonymous"
    assert event.event_time == "2018-10-25T13:58:49.736141Z"


def test_v1beta1_event_with_only_the_old_timestamp():
    old = {k: v for k, v in _event("old").items() if not k.endswith("Timestamp")}
    old.update(apiVersion="audit.k8s.io/v1beta1", timestamp="2018-10-25T13:58:49Z")
    [event] = decode_bytes(json.dumps(old).encode()).events
    assert event.event_time == "2018-10-25T13:58:49Z"


def test_directory_is_read_recursively_in_name_order_skipping_hidden_and_non_log_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.jsonl").write_text(json.dumps(_event("two")) + "\n")
    (tmp_path / "1.json").write_text(json.dumps(_event("one")))
    (tmp_path / "3.log.gz").write_bytes(gzip.compress(json.dumps(_event("three")).encode()))
    (tmp_path / "kube-apiserver-audit").write_text(json.dumps(_event("four")))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.json").write_text(json.dumps(_event("hidden")))
    (tmp_path / "notes.txt").write_text("not a log")
    reader = EventReader()
    assert [e.auditID for e in reader.read_paths([str(tmp_path)])] == ["one", "three", "two", "four"]
    assert reader.rejects.count == 0


def test_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        list(EventReader().read_paths([str(tmp_path / "nope.json")]))


def test_unknown_input_format_is_refused():
    with pytest.raises(UnknownFormatError, match="unknown input format 'splunk'"):
        EventReader(input_format="splunk")


def test_bad_lines_are_reported_with_file_and_line_counted_and_skipped(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join([
        json.dumps(_event("a")),
        '{"kind":"Event","auditID": "broken",',
        json.dumps(_event("b")),
        "[1, 2, 3]",
        "",
        '{"kind": 0}',
        json.dumps(_event("c")),
    ]) + "\n")
    reader = EventReader()
    assert [e.auditID for e in reader.read_paths([str(path)])] == ["a", "b", "c"]
    assert reader.rejects.count == 3
    assert [(r.source, r.line) for r in reader.rejects.kept] == [(str(path), 2), (str(path), 4), (str(path), 6)]
    assert all(r.reason for r in reader.rejects.kept)
    assert str(reader.rejects.kept[0]).startswith(f"{path}:2: ")


def test_falco_not_an_event_fixture_is_rejected_with_a_clear_reason(falco_dir):
    result = decode_bytes((falco_dir / "fal_01_003.json").read_bytes(), source="fal_01_003.json")
    assert result.events == []
    [reject] = result.rejects
    assert (reject.source, reject.line) == ("fal_01_003.json", 1)
    assert "not an audit event" in reject.reason


def test_truncated_gzip_keeps_what_came_before_and_rejects_the_rest():
    data = gzip.compress(b"".join(json.dumps(_event(f"e{i}")).encode() + b"\n" for i in range(20)))
    result = decode_bytes(data[: len(data) - 30])
    assert len(result.rejects) == 1 and "unreadable input" in result.rejects[0].reason
    assert [e.auditID for e in result.events] == [f"e{i}" for i in range(len(result.events))]


def test_cluster_stamped_on_every_event():
    body = json.dumps({"kind": "EventList", "items": [_event("a"), _event("b")]}).encode()
    assert {e.cluster for e in decode_bytes(body, cluster="prod").events} == {"prod"}


def test_one_bad_item_of_an_eventlist_costs_only_that_item():
    good = [_event("a"), _event("b")]
    event_list = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [good[0], {"auditID": 7}, good[1]]}
    for data in (json.dumps(event_list).encode(), json.dumps(event_list, indent=2).encode(),
                 json.dumps([good[0], {"verb": ["x"]}, good[1]]).encode()):
        result = decode_bytes(data, source="batch")
        assert [e.auditID for e in result.events] == ["a", "b"]
        [reject] = result.rejects
        assert (reject.source, reject.line) == ("batch", 1)
        assert reject.reason.startswith("item 1: ")


def test_nesting_as_deep_as_the_api_server_allows_is_decoded_in_any_thread():
    import threading

    def event(audit_id: str, depth: int) -> str:
        nested = "[" * depth + "]" * depth
        return (f'{{"auditID":"{audit_id}","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/pods",'
                f'"user":{{"username":"u"}},"requestObject":{{"spec":{nested}}}}}')

    body = f'{{"kind":"EventList","items":[{event("deep", 9_990)},{event("flat", 1)}]}}'.encode()
    results = []
    worker = threading.Thread(target=lambda: results.append(decode_bytes(body)))
    worker.start()
    worker.join()
    for result in (decode_bytes(body), results[0]):
        assert [e.auditID for e in result.events] == ["deep", "flat"] and not result.rejects
