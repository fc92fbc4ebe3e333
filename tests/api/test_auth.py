"""Credentials: SigV4 verified against configured keys, webhook bearer tokens, and the refusal to listen openly."""

from __future__ import annotations

import gzip

import httpx
import pytest
from botocore.exceptions import ClientError

from api.conftest import guardduty_client
from api.server import LAB_EVENTLISTS
from kubeguard.serve import ServeError, serve

CONFIG = """
[serve]
access_keys = { AKIDKUBEGUARD = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY" }
webhook_tokens = { "token-alpha" = "alpha", "token-any" = "" }
"""


@pytest.fixture
def secured(make_server):
    return make_server(CONFIG)


def test_signed_requests_pass_and_bad_signatures_are_denied(secured):
    gd = guardduty_client(secured.url, "AKIDKUBEGUARD", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY")
    [detector_id] = gd.list_detectors(MaxResults=5)["DetectorIds"]
    gd.create_filter(
        DetectorId=detector_id, Name="signed-body", FindingCriteria={"Criterion": {"severity": {"Gte": 1}}}
    )
    assert gd.list_filters(DetectorId=detector_id, MaxResults=10)["FilterNames"] == ["signed-body"]
    for key, secret in (("AKIDKUBEGUARD", "wrong"), ("AKIDUNKNOWN", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY")):
        with pytest.raises(ClientError) as error:
            guardduty_client(secured.url, key, secret).list_detectors()
        assert error.value.response["Error"]["Code"] == "AccessDeniedException"
    unsigned = httpx.get(f"{secured.url}/detector")
    assert unsigned.status_code == 403 and unsigned.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert httpx.get(f"{secured.url}/healthz").status_code == 200


def test_webhook_needs_a_token_which_may_name_the_cluster(secured):
    with gzip.open(LAB_EVENTLISTS) as lines:
        batch = next(iter(lines))
    assert httpx.post(f"{secured.url}/k8s-audit", content=batch).status_code == 401
    bad = httpx.post(f"{secured.url}/k8s-audit", content=batch, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    good = httpx.post(f"{secured.url}/k8s-audit", content=batch, headers={"Authorization": "Bearer token-alpha"})
    assert good.status_code == 200
    routed = httpx.post(f"{secured.url}/k8s-audit/beta", content=batch, headers={"Authorization": "Bearer token-any"})
    assert routed.status_code == 200
    assert httpx.get(f"{secured.url}/metrics", headers={"Authorization": "Bearer token-alpha"}).status_code == 200
    # A token bound to a cluster cannot file its events under another one through the path.
    alpha = {"Authorization": "Bearer token-alpha"}
    assert httpx.post(f"{secured.url}/k8s-audit/beta", content=batch, headers=alpha).status_code == 403
    assert httpx.post(f"{secured.url}/k8s-audit/alpha", content=batch, headers=alpha).status_code == 200
    assert httpx.get(f"{secured.url}/metrics").status_code == 403


def test_refuses_to_listen_beyond_loopback_without_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBEGUARD_ACCESS_KEYS", raising=False)
    monkeypatch.delenv("KUBEGUARD_WEBHOOK_TOKENS", raising=False)
    with pytest.raises(ServeError, match="refusing to listen"):
        serve(host="0.0.0.0", port=0, db=str(tmp_path / "db.sqlite"))


def test_open_loopback_server_takes_the_example_kubeconfig_placeholder_token(server):
    # deploy/audit-webhook.kubeconfig carries a placeholder token; a default `kubeguard serve` has none configured.
    body = gzip.decompress(LAB_EVENTLISTS.read_bytes()).splitlines()[0]
    response = httpx.post(
        f"{server.url}/k8s-audit/lab", content=body,
        headers={"Authorization": "Bearer REPLACE-WITH-A-LONG-RANDOM-TOKEN", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert httpx.get(f"{server.url}/api/spool").json()["events"] > 0


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ('type = "http"', "needs a url"),
        ('type = "jsonl"', "needs a path"),
        ('type = "stdout"\nqueue_size = 0', "must be positive"),
    ],
)
def test_a_sink_that_could_only_lose_events_is_refused_at_start(tmp_path, sink, message):
    config = tmp_path / "kubeguard.toml"
    config.write_text(f"[serve]\n[[serve.sinks]]\n{sink}\n")
    with pytest.raises(ServeError, match=message):
        serve(port=0, db=f"sqlite:///{tmp_path / 'kg.db'}", config=config)


def test_an_unsigned_oversized_body_is_refused_before_it_is_buffered(secured):
    # The signature check reads the body; before any caller is authenticated it must stay bounded.
    huge = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    for headers in ({}, {"Transfer-Encoding": "chunked"}):
        content = huge if not headers else iter([huge[i : i + 65536] for i in range(0, len(huge), 65536)])
        response = httpx.post(f"{secured.url}/detector", content=content, headers=headers)
        assert response.status_code == 400, response.text
        assert "request body is over" in response.json()["message"]
    gd = guardduty_client(secured.url, "AKIDKUBEGUARD", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY")
    assert len(gd.list_detectors()["DetectorIds"]) == 1  # a signed body under the bound still reads


@pytest.mark.parametrize("value", ["²", "9" * 5000])
def test_a_max_results_query_that_int_cannot_read_is_a_bad_request(server, value):
    response = httpx.get(f"{server.url}/detector", params={"maxResults": value})
    assert response.status_code == 400 and "maxResults" in response.json()["message"]


def test_an_access_key_without_a_secret_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEGUARD_ACCESS_KEYS", "AKIDNOSECRET")
    with pytest.raises(ServeError, match="AKIDNOSECRET"):
        serve(port=0, db=f"sqlite:///{tmp_path / 'kg.db'}")


def test_the_example_configurations_placeholder_credentials_are_refused(tmp_path, monkeypatch):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "deploy" / "kubeguard.toml"
    with pytest.raises(ServeError, match="placeholder credentials"):
        serve(host="0.0.0.0", port=1, db=str(tmp_path / "kg.db"), config=example)  # noqa: S104
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    for variable, value in (("KUBEGUARD_WEBHOOK_TOKENS", "REPLACE-WITH-A-LONG-RANDOM-TOKEN="),
                            ("KUBEGUARD_ACCESS_KEYS", "AKIDKUBEGUARDEXAMPLE:real-secret")):
        with monkeypatch.context() as patch:
            patch.setenv(variable, value)
            with pytest.raises(ServeError, match="placeholder"):
                serve(host="0.0.0.0", port=1, db=str(tmp_path / "kg.db"), config=empty)  # noqa: S104
