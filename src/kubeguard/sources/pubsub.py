"""Read a GKE cluster's audit log from a Pub/Sub subscription fed by a Cloud Logging sink.

GKE writes its audit log to Cloud Logging; a Log Router sink publishes each LogEntry (JSON) to a Pub/Sub
topic. kubeguard pulls the subscription, rebuilds the audit Events (:mod:`kubeguard.audit.gke`), files
them under the cluster the entries name (``resource.labels.cluster_name``, unless ``cluster=`` overrides)
and acknowledges only after the batch is committed to the spool.

Pub/Sub delivers at least once: a message committed but not acknowledged (a crash between the two, a
lost acknowledgement) comes back. The ids of committed messages are stored in the same transaction as
their batch and a message seen again is only acknowledged, so a crash repeats nothing. Ids are kept for
an hour of publish time past the newest message.

The REST API is used directly: against the emulator (``PUBSUB_EMULATOR_HOST``, as Google's clients do)
without credentials, against Google Cloud with Application Default Credentials (the ``gcp`` extra).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import httpx

from kubeguard.audit.decode import decode_bytes
from kubeguard.sources.health import SourceHealth
from kubeguard.sources.loop import LiveSource
from kubeguard.sources.records import REJECT_NOT_AUDIT_EVENT
from kubeguard.sources.spec import SourceSpec
from kubeguard.sources.writer import SpoolWriter
from kubeguard.store import source_cursors
from kubeguard.store.source_cursors import SeenEvent

log = logging.getLogger(__name__)

MAX_MESSAGES = 1000
#: Message ids are remembered this long (publish time) past the newest message.
KEEP_IDS_MS = 3600 * 1000
PRUNE_EVERY_SECONDS = 60.0
SCOPE = "https://www.googleapis.com/auth/pubsub"


class PubSubError(RuntimeError):
    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


class PubSubRest:
    """``pull`` and ``acknowledge`` of one subscription over Pub/Sub's REST API."""

    def __init__(self, subscription: str, *, timeout: float = 60.0, pull_wait: float = 30.0) -> None:
        emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
        self.base = f"http://{emulator}/v1" if emulator else "https://pubsub.googleapis.com/v1"
        self.subscription = subscription
        self._credentials = None if emulator else _default_credentials()
        self._http = httpx.Client(timeout=timeout)
        self.pull_wait = pull_wait

    def pull(self, max_messages: int = MAX_MESSAGES) -> list[dict[str, Any]]:
        """A long poll: the service answers when messages are there; ``pull_wait`` without any is empty."""
        try:
            body = self._call("pull", {"maxMessages": max_messages}, timeout=self.pull_wait)
        except PubSubError as exc:
            if isinstance(exc.__cause__, httpx.ReadTimeout):
                return []
            raise
        return body.get("receivedMessages") or []

    def acknowledge(self, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), 1000):
            self._call("acknowledge", {"ackIds": ack_ids[start : start + 1000]})

    def _call(self, verb: str, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        headers = {}
        if self._credentials is not None:
            headers["Authorization"] = f"Bearer {_token(self._credentials)}"
        try:
            response = self._http.post(
                f"{self.base}/{self.subscription}:{verb}",
                json=payload,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise PubSubError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise PubSubError(
                f"{verb}: HTTP {response.status_code}: {response.text[:300]}",
                throttled=response.status_code == 429,
            )
        return response.json() if response.content else {}

    def close(self) -> None:
        self._http.close()


def _default_credentials() -> Any:
    from kubeguard.extras import require

    auth = require("google.auth")
    credentials, _project = auth.default(scopes=[SCOPE])
    return credentials


def _token(credentials: Any) -> str:
    if not credentials.valid:
        from google.auth.transport.requests import Request

        credentials.refresh(Request())
    return credentials.token


def publish_time_ms(text: str) -> int:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


class PubSubSource(LiveSource):
    """A live reader of one subscription feeding the spool; runs in its own thread until stopped."""

    def __init__(
        self,
        spec: SourceSpec,
        writer: SpoolWriter,
        engine: Any,
        *,
        client: PubSubRest | None = None,
        health: SourceHealth | None = None,
    ) -> None:
        super().__init__(spec)
        self.spec = spec
        self.writer = writer
        self.engine = engine
        self.client = client or PubSubRest(spec.target)
        self.health = health or SourceHealth(spec.name, spec.kind, spec.target, spec.cluster or "(from entries)")
        self.seen: set[str] = set()
        self.newest_ms = 0
        self._pruned_at = 0.0
        self._loaded = False

    def advance(self) -> bool:
        return self.pull_once() > 0

    def is_throttle(self, exc: Exception) -> bool:
        return isinstance(exc, PubSubError) and exc.throttled

    def load(self) -> None:
        rows = source_cursors.load_seen(self.engine, self.spec.name)
        self.seen = {row.event_id for row in rows}
        self.newest_ms = max((row.timestamp_ms for row in rows), default=0)
        self._loaded = True

    def pull_once(self) -> int:
        """Pull, spool what is new, acknowledge everything pulled; returns how many messages came."""
        if not self._loaded:
            self.load()
        messages = self.client.pull()
        if not messages:
            self.health.committed(self._position(), caught_up_ms=int(time.time() * 1000))
            return 0
        by_cluster: dict[str, list[tuple[bytes, SeenEvent, int]]] = defaultdict(list)
        unused: list[SeenEvent] = []
        rejects: Counter[str] = Counter()
        duplicates = 0
        for received in messages:
            message = received.get("message") or {}
            message_id = str(message.get("messageId", ""))
            published = publish_time_ms(str(message.get("publishTime", "")))
            if message_id in self.seen:
                duplicates += 1
                continue
            row = SeenEvent(message_id, None, published)
            data = base64.b64decode(message.get("data", "") or "")
            decoded = decode_bytes(data, source="pubsub", cluster=self.spec.cluster or None, input_format="gke")
            if not decoded.events:
                rejects[REJECT_NOT_AUDIT_EVENT] += 1
                unused.append(row)
                continue
            line = data.replace(b"\n", b" ").replace(b"\r", b" ")
            by_cluster[decoded.events[0].cluster].append((line, row, len(decoded.events)))
        self._commit(by_cluster, unused)
        if len(messages) < MAX_MESSAGES:
            self.health.committed(self._position(), caught_up_ms=int(time.time() * 1000))
        self.health.read(sum(n for group in by_cluster.values() for _l, _r, n in group), rejects, None, duplicates)
        # Acknowledged only now: a crash before this line makes Pub/Sub deliver them again, and the ids
        # committed above drop them then.
        self.client.acknowledge([str(m.get("ackId")) for m in messages if m.get("ackId")])
        self._maybe_prune()
        return len(messages)

    def _commit(self, by_cluster: dict[str, list[tuple[bytes, SeenEvent, int]]], unused: list[SeenEvent]) -> None:
        for cluster, group in by_cluster.items():
            rows = [row for _line, row, _n in group]

            def remember(conn: Any, rows: list[SeenEvent] = rows) -> None:
                source_cursors.add_seen(conn, self.spec.name, [r for r in rows if r.event_id])

            body = b"\n".join(line for line, _row, _n in group)
            self.writer.append(cluster, body, sum(n for _l, _r, n in group), remember)
            self._remember(rows)
        if unused:
            self.writer.commit(lambda conn: source_cursors.add_seen(conn, self.spec.name, unused))
            self._remember(unused)

    def _remember(self, rows: list[SeenEvent]) -> None:
        for row in rows:
            self.seen.add(row.event_id)
            self.newest_ms = max(self.newest_ms, row.timestamp_ms)
            self.health.last_event_ms = max(self.health.last_event_ms or 0, row.timestamp_ms)

    def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = time.monotonic()
        keep_from = self.newest_ms - KEEP_IDS_MS
        self.writer.commit(lambda conn: source_cursors.forget_seen_before(conn, self.spec.name, keep_from))
        self.load()

    def _position(self) -> dict[str, Any]:
        return {
            "subscription": self.spec.target,
            "ids_remembered": len(self.seen),
            "newest_publish_ms": self.newest_ms,
        }
