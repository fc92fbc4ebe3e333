"""The audit webhook: what it accepts, what it refuses, and that refusals never touch the spool."""

from __future__ import annotations

import gzip

import httpx

from api.server import LAB_EVENTLISTS


def first_eventlist() -> bytes:
    with gzip.open(LAB_EVENTLISTS) as lines:
        return next(iter(lines))


def test_eventlist_is_spooled_then_drained_into_findings(server):
    body = first_eventlist()
    response = httpx.post(f"{server.url}/k8s-audit/prod", content=body)
    assert response.status_code == 200 and response.json()["accepted"] == 229
    totals = server.wait_drained()
    assert (totals["events"], totals["batches_done"], totals["batches_failed"]) == (229, 1, 0)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'kubeguard_events_received_total{cluster="prod"} 229.0' in metrics
    assert "kubeguard_events_decoded_total 229.0" in metrics


def test_gzip_by_header_or_magic_bytes_and_single_event_or_array(server):
    body = gzip.compress(first_eventlist())
    assert httpx.post(f"{server.url}/k8s-audit", content=body, headers={"Content-Encoding": "gzip"}).status_code == 200
    assert httpx.post(f"{server.url}/k8s-audit", content=body).status_code == 200
    event = b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"ResponseComplete","verb":"get"}'
    assert httpx.post(f"{server.url}/k8s-audit", content=event).json()["accepted"] == 1
    assert httpx.post(f"{server.url}/k8s-audit", content=b"[" + event + b"," + event + b"]").json()["accepted"] == 2
    assert server.wait_drained()["events"] == 229 * 2 + 3


def test_malformed_and_oversized_bodies_are_refused_and_store_nothing(make_server):
    server = make_server("[serve]\nmax_body_bytes = 4096\nmax_inflated_bytes = 100000\n")
    malformed = httpx.post(f"{server.url}/k8s-audit", content=b"{this is not json")
    assert malformed.status_code == 400
    assert malformed.headers["x-amzn-errortype"] == "BadRequestException"
    assert "no audit event could be read" in malformed.json()["message"]
    too_large = httpx.post(f"{server.url}/k8s-audit", content=first_eventlist())
    assert too_large.status_code == 413
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")
    assert len(bomb) < 4096
    assert httpx.post(f"{server.url}/k8s-audit", content=bomb).status_code == 413
    assert httpx.post(f"{server.url}/k8s-audit/bad%20name", content=b"[]").status_code == 400
    assert server.wait_drained()["batches"] == 0


def test_a_bad_record_in_a_batch_is_rejected_and_counted_once_while_the_rest_is_kept(server):
    good = b'{"auditID":"a-1","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{"username":"u"}}'
    body = b"[" + good + b', {"auditID": 7}]'
    response = httpx.post(f"{server.url}/k8s-audit/prod", content=body)
    assert response.status_code == 200 and response.json() == {"accepted": 1, "rejected": 1}
    totals = server.wait_drained()
    assert (totals["events"], totals["batches_done"]) == (1, 1)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "kubeguard_events_rejected_total 1.0" in metrics
    assert "kubeguard_events_decoded_total 1.0" in metrics


def test_gzip_inside_gzip_is_refused_not_inflated_without_bound(server):
    # The inflated-size bound covers one layer; the decoder would gunzip a second one without any.
    nested = gzip.compress(gzip.compress(first_eventlist()))
    response = httpx.post(f"{server.url}/k8s-audit", content=nested)
    assert response.status_code == 400 and "gzip inside gzip" in response.json()["message"]
    assert server.wait_drained()["batches"] == 0


def test_every_member_of_a_multi_member_gzip_body_is_read(server):
    # `cat a.gz b.gz` is one valid gzip stream; reading only the first member acknowledged and lost the rest.
    event = b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"%s","stage":"ResponseComplete","verb":"get"}\n'
    body = gzip.compress(event % b"m1") + gzip.compress(event % b"m2")
    response = httpx.post(f"{server.url}/k8s-audit", content=body)
    assert response.status_code == 200 and response.json()["accepted"] == 2
    assert httpx.post(f"{server.url}/k8s-audit", content=gzip.compress(event % b"m3") + b"junk").status_code == 400
    assert server.wait_drained()["events"] == 2
