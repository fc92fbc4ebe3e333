"""What one webhook request may cost, and which cluster its batch belongs to.

The API server's batches are small (at most ``--audit-webhook-batch-max-size``, 400 events by default);
the limits here are far above them and exist against a hostile body, not a busy cluster:

- ``max_body_bytes`` (64 MiB) and ``max_inflated_bytes`` (256 MiB): bytes on the wire and after gunzip;
- ``max_json_objects`` (500,000): JSON objects in the body, counted as ``{`` bytes before anything is
  decoded, which bounds the memory decoding can take (a 466 KB gzip of short lines would otherwise inflate
  into 16 million events). A batch of 400 large Deployments logged at ``RequestResponse`` holds about
  150,000;
- ``max_clusters`` (1,000): distinct cluster names the service accepts batches for, since each is a
  metrics series and a set of baselines.

Each refusal is a 413 (or 400 for the cluster bound) whose message names the setting to raise.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kubeguard.api.errors import BadRequest, PayloadTooLarge


def check_object_count(body: bytes, limit: int) -> None:
    objects = body.count(b"{")
    if objects > limit:
        raise PayloadTooLarge(
            f"batch holds {objects:,} JSON objects, over the {limit:,} of [serve] max_json_objects"
        )


def batch_cluster(explicit: str | None, stamped: Iterable[str], default: str) -> str:
    """The cluster of a batch: the path's or credential's, else the one its cloud envelopes name.

    A CloudWatch subscription batch names its log group (``/aws/eks/<name>/cluster``), a GKE entry its
    ``cluster_name``: those are what ``scan`` files the events under, so the webhook does too. Events with
    no envelope are stamped ``default`` by the decoder and take the configured default cluster.
    """
    if explicit:
        return explicit
    named = set(stamped) - {"default"}
    if len(named) > 1:
        raise BadRequest(f"one batch must hold one cluster's events; this one names {', '.join(sorted(named))}")
    return named.pop() if named else default


class ClusterRegistry:
    """The clusters batches were accepted for, bounded by ``max_clusters``."""

    def __init__(self, limit: int, known: Iterable[str] = ()) -> None:
        self.limit = limit
        self._known = set(known)
        self._lock = threading.Lock()

    def admit(self, cluster: str) -> None:
        with self._lock:
            if cluster in self._known:
                return
            if len(self._known) >= self.limit:
                raise BadRequest(
                    f"cluster {cluster!r} would be cluster number {len(self._known) + 1:,}, over the "
                    f"{self.limit:,} of [serve] max_clusters"
                )
            self._known.add(cluster)
