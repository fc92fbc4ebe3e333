"""Severity colours and the facts a chat message shows; shared by the Slack and Teams sinks."""

from __future__ import annotations

from kubeguard.findings.formats.summary import Summary

#: Hex colours by severity label (Slack attachment bar, Teams MessageCard theme).
COLOURS = {"Critical": "#8B0000", "High": "#D62728", "Medium": "#FF9900", "Low": "#2E86C1"}


def colour(label: str) -> str:
    return COLOURS.get(label, "#808080")


def facts(summary: Summary) -> list[tuple[str, str]]:
    """(label, value) pairs worth a glance, in reading order; empty values left out."""
    pairs = [
        ("Severity", f"{summary.severity_label} ({summary.severity:g})"),
        ("Type", summary.type),
        ("Cluster", summary.cluster),
        ("Principal", summary.principal),
        ("Source IP", summary.source_ip),
        ("API call", f"{summary.verb} {summary.request_uri}".strip()),
        ("Count", str(summary.count)),
        ("Last seen", summary.last_seen),
    ]
    return [(name, value) for name, value in pairs if value]
