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


def _subscription_batch(log_group: str) -> bytes:
    """A CloudWatch Logs subscription batch (what a Firehose or Lambda forwards) holding the lab's first events."""
    import json

    events = json.loads(first_eventlist())["items"][:20]
    return json.dumps({
        "messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": log_group,
        "logStream": "kube-apiserver-audit-0123", "subscriptionFilters": ["kubeguard"],
        "logEvents": [{"id": str(i), "timestamp": 1764500000000 + i, "message": json.dumps(e)}
                      for i, e in enumerate(events)],
    }).encode()


def test_a_cloud_envelope_names_the_cluster_when_the_path_does_not(server):
    response = httpx.post(f"{server.url}/k8s-audit", content=_subscription_batch("/aws/eks/payments/cluster"))
    assert response.status_code == 200 and response.json()["accepted"] == 20
    assert httpx.post(f"{server.url}/k8s-audit/override", content=_subscription_batch("/aws/eks/x/cluster")
                      ).status_code == 200
    server.wait_drained()
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'kubeguard_events_received_total{cluster="payments"} 20.0' in metrics
    assert 'kubeguard_events_received_total{cluster="override"} 20.0' in metrics
    assert 'cluster="default"' not in metrics and 'cluster="x"' not in metrics


def test_an_amplifying_body_is_refused_before_it_is_decoded(server):
    bomb = gzip.compress(b'{"kind":"EventList","items":[' + b"{}," * 5_000_000 + b"{}]", 9)
    assert len(bomb) < 1_000_000
    response = httpx.post(f"{server.url}/k8s-audit/prod", content=bomb, timeout=60)
    assert response.status_code == 413 and "max_json_objects" in response.json()["message"]
    assert server.wait_drained()["batches"] == 0


def test_the_number_of_clusters_is_bounded(make_server):
    server = make_server("[serve]\nmax_clusters = 2\n")
    event = b'{"auditID":"c-1","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{"username":"u"}}'
    for cluster in ("a", "b", "a"):
        assert httpx.post(f"{server.url}/k8s-audit/{cluster}", content=event).status_code == 200
    refused = httpx.post(f"{server.url}/k8s-audit/c", content=event)
    assert refused.status_code == 400 and "max_clusters" in refused.json()["message"]
    server.stop()
    server.start()  # the bound holds across a restart: the store remembers a and b
    assert httpx.post(f"{server.url}/k8s-audit/b", content=event).status_code == 200
    assert httpx.post(f"{server.url}/k8s-audit/d", content=event).status_code == 400


def test_a_stalled_store_is_a_503_the_api_server_retries_not_a_hang(make_server, db_url):
    import time

    from sqlalchemy import create_engine, text

    server = make_server("[serve]\nstore_timeout_seconds = 1\n")
    body = first_eventlist()
    holder = create_engine(db_url)
    with holder.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("BEGIN"))
            conn.execute(text("LOCK TABLE kg_spool IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        stalled = httpx.post(f"{server.url}/k8s-audit/prod", content=body, timeout=30)
        waited = time.monotonic() - started
        conn.exec_driver_sql("ROLLBACK")
    holder.dispose()
    assert stalled.status_code == 503 and stalled.headers["retry-after"]
    assert waited < 10
    retried = httpx.post(f"{server.url}/k8s-audit/prod", content=body, timeout=30)
    assert retried.status_code == 200
    totals = server.wait_drained()
    # The abandoned attempt may still commit once the lock goes: either way every event is accounted for.
    assert totals["batches_failed"] == 0 and totals["events"] in (229, 458)
