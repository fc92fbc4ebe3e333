"""``/console/`` (summary) and ``/console/search``."""

from __future__ import annotations

from typing import Any

from kubeguard.api.console import charts
from kubeguard.api.console.html import Html, h, link, table, tag
from kubeguard.api.console.layout import KIND_NAMES, entity_link, scope_form, section, severity_badge, when
from kubeguard.graph import kinds

NEW_HEADINGS = {
    kinds.SUBJECT: "New Kubernetes subjects",
    kinds.IP: "New IP addresses",
    kinds.ASN: "New autonomous systems",
    kinds.USER_AGENT: "New user agents",
}


def render_summary(view: dict[str, Any]) -> Html:
    scope = view["scope"]
    period = "day" if view["bucketDays"] == 1 else "week"
    chart = charts.stacked_bars(
        view["days"],
        view["findingsByDay"],
        title=f"Findings per {period} by severity",
        tick_every=max(1, -(-len(view["days"]) // (14 if period == "day" else 7))),
        tick_label=lambda day: day[:10] if period == "week" else day[5:10],
    )
    by_type = charts.bar_list(
        [(link(f"/console/findings?type={_q(t)}", t), n) for t, n in view["byType"]], css="s-High"
    )
    by_cluster = charts.bar_list(
        [(entity_link(kinds.CLUSTER, c) if c else h("—"), n) for c, n in view["byCluster"]], css="s-bar"
    )
    newest = table(
        ("Severity", "Finding", "Subject", "Cluster", "Last seen"),
        (
            (
                severity_badge(f["severity"]),
                link(f"/console/findings/{f['id']}", f["type"]),
                entity_link(kinds.SUBJECT, f["subject"]) if f["subject"] else "",
                f["cluster"],
                when(f["lastSeen"]),
            )
            for f in view["newestHigh"]
        ),
        empty="No high or critical findings in this scope.",
    )
    observed = []
    for kind, entities in view["newlyObserved"].items():
        observed.append(
            tag(
                "div",
                tag("h3", NEW_HEADINGS[kind]),
                table(
                    ("", "First seen"),
                    (
                        (
                            entity_link(
                                kind, e["key"], e["attributes"].get("org") and f"AS{e['key']} {e['attributes']['org']}"
                            ),
                            when(e["firstSeen"]),
                        )
                        for e in entities
                    ),
                    empty="None.",
                ),
                class_="observed",
            )
        )
    health = view["health"]
    spool = health["spool"]
    about = "about " if health.get("activityRowsEstimated") else ""
    health_rows = [
        ("Webhook batches received (retained)", f"{spool.get('batches', 0):,}"),
        ("Events received (retained batches)", f"{spool.get('events', 0):,}"),
        ("Batches waiting for detection", f"{spool.get('batches_pending', 0):,}"),
        ("Batches that failed detection", f"{spool.get('batches_failed', 0):,}"),
        ("Latest activity", when(health["latestActivity"])),
        ("Activity roll-up rows", f"{about}{health['activityRows']:,}"),
    ]
    clusters = table(
        ("Cluster", "Events counted", "Last event"),
        (
            (entity_link(kinds.CLUSTER, c["cluster"]), f"{c['events']:,}", when(c["lastSeen"]))
            for c in health["clusters"]
        ),
        empty="No audit events yet. Point the API server's audit webhook at /k8s-audit.",
    )
    return tag(
        "div",
        tag("h1", "Summary"),
        tag(
            "p",
            f"{view['findingsInScope']:,} active findings in the scope time, {view['findingsTotal']:,} stored in all.",
            class_="lead",
        ),
        scope_form(scope["start"], scope["end"], "/console/"),
        tag(
            "div",
            section("Findings over time by severity", chart, css="panel wide"),
            section("Findings by type", by_type, css="panel wide"),
            section("Findings by cluster", by_cluster),
            section("Newest high-severity findings", newest, css="panel wide"),
            section("Newly observed", tag("div", *observed, class_="observed-grid"), css="panel wide"),
            section(
                "Sources and ingest health",
                tag("dl", *(Html(tag("dt", k) + tag("dd", v)) for k, v in health_rows), class_="facts"),
                clusters,
                css="panel wide",
            ),
            class_="grid",
        ),
        class_="summary",
    )


def render_search(query: str, results: list[dict[str, Any]]) -> Html:
    rows = (
        (
            KIND_NAMES.get(r["kind"], r["kind"]),
            entity_link(r["kind"], r["key"], f"{r['key']} ({r['type']})" if r.get("type") else None),
            when(r.get("lastSeen")),
        )
        for r in results
    )
    return tag(
        "div",
        tag("h1", "Search"),
        tag("p", "Results for ", tag("strong", query) if query else "nothing yet", class_="lead"),
        table(("Kind", "Entity", "Last seen"), rows, empty="No entity or finding id contains that text."),
    )


def _short(kind: str, entity: dict[str, Any]) -> str:
    if kind == kinds.ASN:
        return f"AS{entity['key']} {entity['attributes'].get('org', '')}".strip()
    key = entity["key"]
    return key if len(key) <= 70 else key[:69] + "…"


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
