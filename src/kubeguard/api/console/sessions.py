"""Browser sessions for the console: browsers cannot sign SigV4, so they log in once and carry a cookie.

- Every browser gets a session cookie on its first page (``kg_session``: random, ``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` over HTTPS and on loopback, where browsers honour it over plain HTTP).
  The session holds a CSRF token that every form carries; a POST whose token does not match the session's,
  or whose ``Origin`` names another site, is refused. This holds on an open loopback listener too, where a
  page on any other site could otherwise make the browser archive findings.
- On an open loopback listener (no credentials configured) every session is signed in, as the API is open.
  Otherwise a session signs in with an API access key id and its secret, or with the console password;
  the session id is replaced at sign-in (no fixation), secrets are compared in constant time and never
  echoed, and repeated failures from one address are slowed down.
- Sessions live in memory, bounded in number and lifetime: a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

COOKIE = "kg_session"
MAX_SESSIONS = 10_000
ANONYMOUS_LIFETIME_SECONDS = 12 * 3600
FAILURES_ALLOWED = 5
FAILURE_WINDOW_SECONDS = 300.0


@dataclass(slots=True)
class Session:
    id: str
    csrf: str
    expires: float
    #: Who signed in (an access key id, "console password" or "loopback"); None until then.
    principal: str | None = None


@dataclass
class SessionStore:
    lifetime_seconds: float = 12 * 3600
    _sessions: OrderedDict[str, Session] = field(default_factory=OrderedDict)
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires < time.time():
                del self._sessions[session_id]
                return None
            return session

    def create(self, principal: str | None = None) -> Session:
        lifetime = self.lifetime_seconds if principal else ANONYMOUS_LIFETIME_SECONDS
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time() + lifetime, principal)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def throttled(self, address: str) -> bool:
        """True when ``address`` failed to sign in too often lately."""
        with self._lock:
            recent = self._failures.get(address)
            if not recent:
                return False
            while recent and recent[0] < time.time() - FAILURE_WINDOW_SECONDS:
                recent.popleft()
            return len(recent) >= FAILURES_ALLOWED

    def failed(self, address: str) -> None:
        with self._lock:
            if len(self._failures) > MAX_SESSIONS:
                self._failures.clear()
            self._failures.setdefault(address, deque(maxlen=FAILURES_ALLOWED)).append(time.time())


def store(request: Request) -> SessionStore:
    return request.app.state.console_sessions


def current(request: Request) -> Session | None:
    return store(request).get(request.cookies.get(COOKIE))


def signed_in(request: Request) -> Session | None:
    session = current(request)
    return session if session is not None and session.principal else None


def ensure(request: Request, *, open_access: bool) -> tuple[Session, bool]:
    """The browser's session, created when it has none; (session, whether the cookie must be set)."""
    session = current(request)
    if session is not None:
        return session, False
    return store(request).create("loopback" if open_access else None), True


def cookie_secure(request: Request) -> bool:
    """Whether cookies carry ``Secure``: over HTTPS, and on loopback, where browsers honour it over HTTP."""
    return request.url.scheme == "https" or _is_loopback(request.url.hostname or "")


def set_cookie(response: Response, request: Request, session: Session) -> None:
    secure = cookie_secure(request)
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(session.expires - time.time()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1", "[::1]")


def check_credentials(access_keys: dict[str, str], password: str, key_id: str, secret: str) -> str | None:
    """The principal these credentials sign in as, or None. Every comparison runs in constant time."""
    principal = None
    if key_id:
        known = access_keys.get(key_id)
        expected = known if known is not None else secrets.token_urlsafe(16)
        if hmac.compare_digest(expected.encode(), secret.encode()) and known is not None:
            principal = key_id
    elif password and secret and hmac.compare_digest(password.encode(), secret.encode()):
        principal = "console password"
    return principal


def valid_form(request: Request, session: Session | None, token: str) -> bool:
    """A console POST is genuine: same-origin (when the browser says), and carrying the session's token."""
    if session is None or not token or not hmac.compare_digest(session.csrf.encode(), token.encode()):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.headers.get("host", ""):
            return False
    return True
