"""Single sign-on for the console with an OpenID Connect provider (Keycloak, Dex, Okta, Entra ID, Google...).

The authorization code flow with PKCE, as a confidential client:

1. ``/console/login/oidc`` sends the browser to the provider with a fresh ``state``, ``nonce`` and PKCE
   challenge. The login waiting for its answer is kept here, keyed by the state, and the browser gets the
   state in a short-lived cookie of its own (``kg_oidc``: ``SameSite=Lax``, so that it comes back with the
   provider's redirect, which the session cookie, ``SameSite=Strict``, does not).
2. ``/console/oidc/callback`` takes the answer once: the state must be the browser's and not expired, the
   code is exchanged for tokens at the token endpoint (client secret and PKCE verifier), and the ID token's
   signature is checked against the provider's published keys (asymmetric algorithms only: never ``none``
   or a shared secret), with its issuer, audience, expiry and nonce.
3. The person is allowed in only when the configuration names them: ``oidc_allowed`` lists addresses
   (``erin@example.com``), whole domains (``@example.com``) or subjects, and ``*`` lets in anyone the
   provider signs in, as an explicit choice (a public provider signs in the whole world). Addresses count
   only when the provider says they are verified.

The provider's metadata and keys are fetched over HTTP with bounded size and time, and cached; an unknown
key id fetches the keys once more (the provider rotated them). Nothing the provider sends is shown back
but its error code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from kubeguard.extras import require

STATE_COOKIE = "kg_oidc"
STATE_COOKIE_PATH = "/console/oidc"
#: How long a browser may take at the provider before its answer is refused.
LOGIN_SECONDS = 600
MAX_PENDING_LOGINS = 10_000
#: Bound on what the provider may send: metadata, keys and tokens are a few kilobytes.
MAX_RESPONSE_BYTES = 1024 * 1024
HTTP_TIMEOUT_SECONDS = 10.0
#: Signatures the console accepts: the provider's own keys, never a secret shared with clients.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CLOCK_SKEW_SECONDS = 60
SCOPES = "openid email profile"


class OidcError(Exception):
    """A sign-in that cannot go on; the message is safe to show (it names no secret)."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    allowed: tuple[str, ...]

    def allows(self, claims: dict[str, Any]) -> bool:
        """Whether the configuration names the person these ID token claims describe."""
        if "*" in self.allowed:
            return True
        subject = str(claims.get("sub", ""))
        email = str(claims.get("email", "")).lower() if claims.get("email_verified") is True else ""
        for entry in self.allowed:
            wanted = entry.lower()
            if entry == subject:
                return True
            if email and (wanted == email or (wanted.startswith("@") and email.endswith(wanted))):
                return True
        return False


@dataclass(slots=True)
class PendingLogin:
    nonce: str
    verifier: str
    target: str
    redirect_uri: str
    expires: float


def principal_of(claims: dict[str, Any]) -> str:
    """How a signed-in person is named in the console: their verified address, else the provider's subject."""
    if claims.get("email_verified") is True and claims.get("email"):
        return f"oidc:{claims['email']}"
    return f"oidc:{claims.get('sub', '')}"


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    """One provider: its metadata and keys (cached), and the logins waiting for its answer."""

    def __init__(self, config: OidcConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}
        self._pending: OrderedDict[str, PendingLogin] = OrderedDict()
        self._lock = threading.Lock()

    # -- step 1 ------------------------------------------------------------------------------------------

    def begin(self, target: str, redirect_uri: str) -> tuple[str, str]:
        """(state, the provider's authorization URL) for a browser that wants to sign in and then see ``target``."""
        metadata = self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        with self._lock:
            now = time.time()
            while self._pending and (
                len(self._pending) >= MAX_PENDING_LOGINS or next(iter(self._pending.values())).expires < now
            ):
                self._pending.popitem(last=False)
            self._pending[state] = PendingLogin(nonce, verifier, target, redirect_uri, now + LOGIN_SECONDS)
        query = urlencode({
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        })
        endpoint = metadata["authorization_endpoint"]
        return state, f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    # -- step 2 ------------------------------------------------------------------------------------------

    def take(self, state: str, browser_state: str) -> PendingLogin:
        """The login ``state`` answers, once; the browser must be the one that started it."""
        if not state or not browser_state or not hmac.compare_digest(state.encode(), browser_state.encode()):
            raise OidcError("This sign-in was not started by this browser; please start again.")
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or pending.expires < time.time():
            raise OidcError("This sign-in expired or was already used; please start again.")
        return pending

    def finish(self, pending: PendingLogin, code: str) -> dict[str, Any]:
        """The verified ID token claims for the authorization ``code`` the provider gave ``pending``."""
        if not code:
            raise OidcError("The identity provider sent no authorization code.")
        metadata = self.metadata()
        response = self._request(
            "POST",
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": pending.redirect_uri,
                "code_verifier": pending.verifier,
            },
            auth=(self.config.client_id, self.config.client_secret),
        )
        id_token = response.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("The identity provider's token response held no ID token.")
        claims = self.verify(id_token)
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), pending.nonce.encode()):
            raise OidcError("The ID token was not issued for this sign-in (nonce).")
        access_token = response.get("access_token")
        if "email" not in claims and isinstance(access_token, str) and metadata.get("userinfo_endpoint"):
            claims = {**claims, **self._userinfo(metadata["userinfo_endpoint"], access_token, claims["sub"])}
        return claims

    def _userinfo(self, endpoint: str, access_token: str, subject: str) -> dict[str, Any]:
        """The address claims from the UserInfo endpoint, for providers that leave them out of the ID token
        (as the specification allows for the code flow); only when it speaks of the ID token's subject."""
        info = self._request("GET", endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if info.get("sub") != subject:
            raise OidcError("The identity provider's UserInfo speaks of another subject.")
        return {name: info[name] for name in ("email", "email_verified") if name in info}

    def verify(self, id_token: str) -> dict[str, Any]:
        """The claims of ``id_token`` once its signature, issuer, audience and times are checked."""
        jwt = require("jwt")
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise OidcError("The ID token is not a JWT.") from exc
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise OidcError(f"The ID token is signed with {str(algorithm)[:16]!r}, which the console does not accept.")
        key = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                id_token,
                key,
                algorithms=[algorithm],
                audience=self.config.client_id,
                issuer=self.metadata()["issuer"],
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"The ID token was refused: {exc}.") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("The ID token was issued to another party (azp).")
        return claims

    # -- the provider's metadata and keys -----------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            issuer = self.config.issuer.rstrip("/")
            metadata = self._request("GET", f"{issuer}/.well-known/openid-configuration")
            for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(metadata.get(name), str):
                    raise OidcError(f"The identity provider's metadata has no {name}.")
            if metadata["issuer"].rstrip("/") != issuer:
                raise OidcError("The identity provider's metadata names another issuer.")
            self._metadata = metadata
        return self._metadata

    def _key(self, key_id: str) -> Any:
        """The provider's public key named ``key_id`` (its only key when the token names none)."""
        jwt = require("jwt")
        for attempt in range(2):
            if attempt or not self._keys:
                try:
                    published = jwt.PyJWKSet.from_dict(self._request("GET", self.metadata()["jwks_uri"]))
                except jwt.PyJWTError as exc:
                    raise OidcError("The identity provider's keys could not be read.") from exc
                self._keys = {key.key_id or "": key for key in published.keys}
            found = self._keys.get(key_id)
            if found is None and not key_id and len(self._keys) == 1:
                found = next(iter(self._keys.values()))
            if found is not None:
                return found.key
        raise OidcError("The ID token is signed with a key the identity provider does not publish.")

    def _request(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        try:
            with (
                httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, transport=self._transport) as client,
                client.stream(method, url, headers={"Accept": "application/json", **(headers or {})}, **kwargs)
                as response,
            ):
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise OidcError(f"The identity provider sent more than {MAX_RESPONSE_BYTES} bytes.")
        except httpx.HTTPError as exc:
            raise OidcError(f"The identity provider could not be reached ({type(exc).__name__}).") from exc
        if response.status_code != 200:
            raise OidcError(f"The identity provider answered HTTP {response.status_code}.")
        try:
            document = orjson.loads(body)
        except ValueError as exc:
            raise OidcError("The identity provider did not answer with JSON.") from exc
        if not isinstance(document, dict):
            raise OidcError("The identity provider did not answer with a JSON object.")
        return document
