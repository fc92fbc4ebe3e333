"""Prometheus metrics of one service instance, on a registry of its own (tests run several in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_received = Counter(
            "kubeguard_events_received",
            "Audit events accepted by the webhook",
            ["cluster"],
            registry=self.registry,
        )
        self.events_decoded = Counter(
            "kubeguard_events_decoded", "Audit events decoded by the spool drainer", registry=self.registry
        )
        self.events_rejected = Counter(
            "kubeguard_events_rejected", "Audit records that could not be read", registry=self.registry
        )
        self.batches_refused = Counter(
            "kubeguard_webhook_batches_refused",
            "Webhook requests refused",
            ["reason"],
            registry=self.registry,
        )
        self.detection_seconds = Histogram(
            "kubeguard_detection_seconds",
            "Time detection spent on one group of spool batches (one transaction)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.detection_group_batches = Histogram(
            "kubeguard_detection_group_batches",
            "Spool batches detected together in one transaction (more while a backlog waits)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.detection_decoded = Counter(
            "kubeguard_detection_batches_decoded",
            "Spool batches detection took decoded by the webhook of this process, or decoded from the stored body",
            ["by"],
            registry=self.registry,
        )
        self.spool_commit_batches = Histogram(
            "kubeguard_spool_commit_batches",
            "Webhook batches stored by one spool commit (group commit of concurrent requests)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.findings = Counter(
            "kubeguard_findings", "Finding occurrences recorded", ["type", "outcome"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "kubeguard_spool_pending_events",
            "Audit events acknowledged but not yet through detection",
            registry=self.registry,
        )
        self.pending_bytes = Gauge(
            "kubeguard_spool_pending_bytes",
            "Body bytes of acknowledged batches not yet through detection",
            registry=self.registry,
        )
        self.lag_seconds = Gauge(
            "kubeguard_spool_lag_seconds",
            "How long the oldest acknowledged batch has waited for detection",
            registry=self.registry,
        )
        self.batch_rejects = Counter(
            "kubeguard_batch_events_rejected",
            "Records of processed batches that could not be read or judged (the rest of each batch was)",
            registry=self.registry,
        )
        self.batches_failed = Counter(
            "kubeguard_spool_batches_failed",
            "Spool batches on which detection raised",
            registry=self.registry,
        )
        self.sink_delivered_total = Counter(
            "kubeguard_sink_delivered", "Finding events a sink delivered", ["sink"], registry=self.registry
        )
        self.sink_retried_total = Counter(
            "kubeguard_sink_retried", "Finding events a sink failed to deliver and kept for a retry", ["sink"],
            registry=self.registry,
        )
        self.sink_dropped_total = Counter(
            "kubeguard_sink_dropped", "Finding events a sink dropped, by reason", ["sink", "reason"],
            registry=self.registry,
        )
        self.sink_outbox_depth = Gauge(
            "kubeguard_sink_outbox_depth", "Finding events waiting in a sink's outbox", ["sink"],
            registry=self.registry,
        )

    # The sinks report delivery health through these (kubeguard.sinks.health.HealthMetrics).
    def sink_delivered(self, sink: str, count: int) -> None:
        self.sink_delivered_total.labels(sink).inc(count)

    def sink_retried(self, sink: str, count: int) -> None:
        self.sink_retried_total.labels(sink).inc(count)

    def sink_dropped(self, sink: str, reason: str, count: int) -> None:
        self.sink_dropped_total.labels(sink, reason).inc(count)

    def sink_depth(self, sink: str, depth: int) -> None:
        self.sink_outbox_depth.labels(sink).set(depth)
