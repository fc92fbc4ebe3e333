"""Everything a request handler or background task of one service instance needs, in one object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from kubeguard.api.intel_sets import IntelSets
from kubeguard.api.metrics import ServiceMetrics
from kubeguard.api.options import ServeOptions
from kubeguard.findings.publish import Publisher
from kubeguard.store.recorder import FindingRecorder
from kubeguard.store.spool import Spool


@dataclass(slots=True)
class ServiceContext:
    engine: Engine
    settings: Any
    options: ServeOptions
    metrics: ServiceMetrics
    spool: Spool
    recorder: FindingRecorder
    publisher: Publisher
    intel: IntelSets
    #: The detector findings are filed under (created on first start; None once deleted).
    detector_id: str | None
    #: True when the listener is loopback-only and no credential is configured: no authentication.
    open_access: bool
    #: True when TLS requires a client certificate signed by ``--client-ca``: every peer is verified.
    mutual_tls: bool = False
    detector_enabled: bool = True
    #: Wakes the spool drainer when a batch arrives (set by the drainer).
    wake_drainer: Any = None
    #: Live sources (CloudWatch, audit log files) feeding the spool, when serve was given any.
    sources: Any = None

    #: Commits webhook batches to the spool, concurrent requests' together
    #: (:class:`kubeguard.api.ingest.group_commit.GroupCommitter`).
    committer: Any = None
    #: Decoded webhook batches the drainer of this process takes instead of decoding the bodies again
    #: (:class:`kubeguard.api.ingest.handoff.DecodedHandoff`); None without a drainer here.
    handoff: Any = None
    #: The webhook's backpressure (``kubeguard.api.ingest.backlog.Backlog``); None accepts without bound.
    backlog: Any = None
    #: True while the spool drainer's thread runs (readiness); None when this process runs no drainer.
    drainer_alive: Any = None

    #: The rules detection evaluates (``kubeguard.detectors.rules.catalog.RuleCatalog``), for the rules API.
    rules: Any = None
    #: With ``serve --bus``: the :class:`kubeguard.bus.ingest.BusIngest` batches are published to instead.
    bus: Any = None
