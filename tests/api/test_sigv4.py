"""SigV4 verification, unit level: requests signed by botocore, then tampered with."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kubeguard.api.sigv4 import SignatureError, SignedRequest, verify

HOST = "127.0.0.1:8080"


def signed(body: bytes, *, key: str = "AKIDTEST", secret: str = "secret", extra: dict[str, str] | None = None,
           service: str = "guardduty", region: str = "us-east-1"):
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/detector/d1/findings",
        data=body,
        headers={"Host": HOST, "Content-Type": "application/json", **(extra or {})},
    )
    signer = SigV4Auth(Credentials(key, secret), service, region)
    signer.add_auth(request)
    return SignedRequest(
        method="POST",
        raw_path="/detector/d1/findings",
        query="",
        headers=list(request.headers.items()),
        body=body,
    )


def test_a_botocore_signature_verifies():
    request = signed(b'{"maxResults": 5}')
    assert verify(request, {"AKIDTEST": "secret"}.get, now=datetime.now(UTC)) == "AKIDTEST"


def test_a_signed_content_hash_header_does_not_let_the_body_be_swapped():
    original = b'{"findingIds": ["a"]}'
    claimed = hashlib.sha256(original).hexdigest()
    request = signed(original, extra={"X-Amz-Content-Sha256": claimed})
    assert verify(request, {"AKIDTEST": "secret"}.get, now=datetime.now(UTC)) == "AKIDTEST"
    swapped = SignedRequest(request.method, request.raw_path, request.query, request.headers, b'{"findingIds": ["b"]}')
    with pytest.raises(SignatureError, match="does not match"):
        verify(swapped, {"AKIDTEST": "secret"}.get, now=datetime.now(UTC))


def test_an_access_key_configured_without_a_secret_verifies_nothing():
    request = signed(b"{}", secret="")
    with pytest.raises(SignatureError, match="unknown access key"):
        verify(request, {"AKIDTEST": ""}.get, now=datetime.now(UTC))


def test_a_signature_made_for_another_service_does_not_open_this_api():
    request = signed(b"{}", service="s3")
    with pytest.raises(SignatureError, match="service 's3'"):
        verify(request, {"AKIDTEST": "secret"}.get, now=datetime.now(UTC))


def test_a_signature_for_another_region_is_refused():
    assert verify(signed(b"{}"), {"AKIDTEST": "secret"}.get, now=datetime.now(UTC), region="us-east-1") == "AKIDTEST"
    with pytest.raises(SignatureError, match="region 'eu-west-1'"):
        verify(signed(b"{}", region="eu-west-1"), {"AKIDTEST": "secret"}.get, now=datetime.now(UTC), region="us-east-1")


def test_a_signature_older_than_the_allowed_skew_is_refused():
    from datetime import timedelta

    request = signed(b"{}")
    signed_at = datetime.now(UTC)
    with pytest.raises(SignatureError, match="too far"):
        verify(request, {"AKIDTEST": "secret"}.get, now=signed_at + timedelta(minutes=16))
    assert verify(request, {"AKIDTEST": "secret"}.get, now=signed_at + timedelta(minutes=14)) == "AKIDTEST"
