"""A one-line rendering for chat, syslog and terminals: severity, type, cluster, who, from where, link."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeguard.findings.formats.summary import summarize


def text_line(finding: Mapping[str, Any], link: str = "") -> str:
    """``[High 8] Type on cluster by user from ip (x3): title <link>`` — the parts that are known."""
    facts = summarize(finding)
    parts = [f"[{facts.severity_label} {facts.severity:g}] {facts.type}"]
    if facts.cluster:
        parts.append(f"on {facts.cluster}")
    if facts.principal:
        parts.append(f"by {facts.principal}")
    if facts.source_ip:
        parts.append(f"from {facts.source_ip}")
    line = " ".join(parts)
    if facts.count > 1:
        line += f" (x{facts.count})"
    if facts.archived:
        line += " [archived]"
    line += f": {facts.title}"
    if link:
        line += f" {link}"
    return " ".join(line.split())
