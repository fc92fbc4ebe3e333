"""Which findings a sink wants: minimum severity, types, clusters and a FindingCriteria criterion, ANDed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeguard.findings.criteria import matches
from kubeguard.findings.formats.summary import summarize
from kubeguard.severity import parse_threshold
from kubeguard.sinks.options import SinkOptions


class SinkFilter:
    def __init__(self, options: SinkOptions) -> None:
        self.min_severity = parse_threshold(options.min_severity) if options.min_severity else 0.0
        self.exact_types = {t for t in options.types if not t.endswith("*")}
        self.type_prefixes = tuple(t[:-1] for t in options.types if t.endswith("*"))
        self.clusters = set(options.clusters)
        self.criteria = options.criteria
        self.send_archived = options.send_archived

    def wants(self, finding: Mapping[str, Any], *, archived_now: bool = False) -> bool:
        """``archived_now`` is an archive action (not a new occurrence); only some sinks want those."""
        if archived_now and not self.send_archived:
            return False
        facts = summarize(finding)
        if facts.severity < self.min_severity:
            return False
        if (self.exact_types or self.type_prefixes) and not (
            facts.type in self.exact_types or facts.type.startswith(self.type_prefixes)
        ):
            return False
        if self.clusters and facts.cluster not in self.clusters:
            return False
        return not self.criteria or matches(self.criteria, finding)
