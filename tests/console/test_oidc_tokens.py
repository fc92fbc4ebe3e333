"""What the console accepts as an ID token, and whom it lets in (``kubeguard.api.console.oidc``).

The provider here is an ``httpx.MockTransport`` publishing metadata and a key made in the test, so that
tokens can be forged the ways an attacker would: unsigned, signed with a shared secret, by another key, for another client, by another issuer, expired, for another sign-in.
The browser tests (``test_oidc.py``) run the whole flow against a real provider.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeguard.api.console.oidc import OidcClient, OidcConfig, OidcError, PendingLogin, principal_of

ISSUER = "https://id.example.test"
CLIENT_ID = "kubeguard-console"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = rsa_key(), rsa_key()


def published(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    document = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**document, "kid": kid, "use": "sig", "alg": "RS256"}


class FakeProvider:
    """Metadata, keys and a token endpoint answering with whatever ID token the test sets."""

    def __init__(self) -> None:
        self.id_token = ""
        self.token_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/jwks",
            })
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [published(KEY, "k1")]})
        if path == "/token":
            self.token_requests.append(request)
            return httpx.Response(200, json={"id_token": self.id_token, "token_type": "Bearer"})
        return httpx.Response(404)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def client(provider: FakeProvider) -> OidcClient:
    return OidcClient(OidcConfig(ISSUER, CLIENT_ID, "client-secret", ("erin@example.test",)),
                      transport=httpx.MockTransport(provider))


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": "n-1",
            "email": "erin@example.test", "email_verified": True}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def signed(body: dict[str, Any], key: Any = KEY, kid: str = "k1", algorithm: str = "RS256") -> str:
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


def pending() -> PendingLogin:
    return PendingLogin(nonce="n-1", verifier="v" * 43, target="/console/", redirect_uri="https://kg/cb",
                        expires=time.time() + 60)


def test_a_token_signed_by_the_provider_for_this_sign_in_is_accepted(client, provider):
    provider.id_token = signed(claims())
    found = client.finish(pending(), "the-code")
    assert found["sub"] == "u-1"
    assert principal_of(found) == "oidc:erin@example.test"
    assert client.config.allows(found)
    # The code went with the client's secret (HTTP Basic) and the PKCE verifier.
    sent = provider.token_requests[0]
    assert sent.headers["authorization"].startswith("Basic ")
    assert b"code_verifier=" + b"v" * 43 in sent.content and b"code=the-code" in sent.content


@pytest.mark.parametrize(
    ("token", "refusal"),
    [
        (lambda: jwt.encode(claims(), None, algorithm="none"), "does not accept"),
        (lambda: jwt.encode(claims(), "a secret shared with every client!", algorithm="HS256", headers={"kid": "k1"}),
         "does not accept"),
        (lambda: signed(claims(), OTHER_KEY), "Signature verification failed"),
        (lambda: signed(claims(), OTHER_KEY, kid="k9"), "key the identity provider does not publish"),
        (lambda: signed(claims(aud="someone-else")), "Audience"),
        (lambda: signed(claims(iss="https://evil.example.test")), "issuer"),
        (lambda: signed(claims(exp=int(time.time()) - 3600)), "expired"),
        (lambda: signed(claims(nonce="n-2")), "nonce"),
        (lambda: signed(claims(aud=[CLIENT_ID, "other"])), "azp"),
        (lambda: signed(claims(sub=None)), "sub"),
        (lambda: "not.a.jwt", "not a JWT"),
    ],
    ids=["unsigned", "hmac", "other-key", "unknown-kid", "audience", "issuer", "expired", "nonce", "azp", "no-sub",
         "garbage"],
)
def test_forged_or_misdirected_tokens_are_refused(client, provider, token, refusal):
    provider.id_token = token()
    with pytest.raises(OidcError, match=refusal):
        client.finish(pending(), "the-code")


def test_an_answer_is_taken_once_and_only_by_the_browser_that_asked(client):
    state, location = client.begin("/console/findings", "https://kg/console/oidc/callback")
    assert location.startswith(f"{ISSUER}/auth?") and f"state={state}" in location
    assert "code_challenge_method=S256" in location
    with pytest.raises(OidcError, match="not started by this browser"):
        client.take(state, "another-browser's-state")
    assert client.take(state, state).target == "/console/findings"
    with pytest.raises(OidcError, match="expired or was already used"):
        client.take(state, state)


@pytest.mark.parametrize(
    ("allowed", "token_claims", "expected"),
    [
        (("erin@example.test",), claims(), True),
        (("ERIN@example.test",), claims(), True),
        (("erin@example.test",), claims(email_verified=False), False),
        (("erin@example.test",), claims(email_verified="true"), False),  # only a real true counts
        (("@example.test",), claims(email="mallory@example.test"), True),
        (("@example.test",), claims(email="mallory@evil-example.test"), False),
        (("@example.test",), claims(email="mallory@example.test.evil"), False),
        (("u-1",), claims(email=None), True),
        (("u-2",), claims(email=None), False),
        (("*",), claims(email=None), True),
    ],
)
def test_who_may_sign_in(allowed, token_claims, expected):
    assert OidcConfig(ISSUER, CLIENT_ID, "s", allowed).allows(token_claims) is expected
