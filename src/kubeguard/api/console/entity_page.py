"""``/console/entities/{kind}/{key}``: a Detective-style profile of one entity over a scope time."""

from __future__ import annotations

from typing import Any

from kubeguard.api.console import charts
from kubeguard.api.console.html import Html, definition_list, entity_href, finding_href, link, table, tag
from kubeguard.api.console.layout import KIND_NAMES, entity_link, graph_box, scope_form, section, severity_badge, when
from kubeguard.graph import kinds

OBSERVED_NAMES = {
    "call": "API calls",
    "ip": "IP addresses",
    "asn": "Autonomous systems (or network owners)",
    "user_agent": "User agents",
}
WIDE_RELATION_ROWS = 6
OBSERVED_KINDS = {"ip": kinds.IP, "asn": kinds.ASN, "user_agent": kinds.USER_AGENT}


def render_entity(view: dict[str, Any], pod_attributes: dict[str, dict[str, Any]]) -> Html:
    entity = view["entity"]
    kind, key = entity["kind"], entity["key"]
    scope = view["scope"]
    scoped = {"start": scope["start"], "end": scope["end"]}
    activity = view["activity"]
    panels: list[Any] = [section("Profile", _profile(entity))]
    if kind in (kinds.POD, kinds.WORKLOAD):
        panels.append(section("Containers and security context", _security(entity["attributes"])))
    if activity["total"] or kind not in (kinds.IMAGE, kinds.WORKLOAD):
        panels.append(
            section(
                "Overall Kubernetes API activity",
                charts.stacked_bars(activity["hours"], activity["outcomes"], title="API calls per hour by outcome"),
                tag("p", f"{activity['total']:,} API calls in the scope time.", class_="hint"),
                css="panel wide",
            )
        )
    if "newlyObserved" in view:
        panels.append(section("Newly observed in the scope time", _observed(view, scoped), css="panel wide"))
    breakdown = view["breakdown"]
    for name, title, column_kind in (
        ("calls", "API calls", None),
        ("subjects", "Subjects", kinds.SUBJECT),
        ("ips", "Source IP addresses", kinds.IP),
        ("userAgents", "User agents", kinds.USER_AGENT),
        ("clusters", "Clusters", kinds.CLUSTER),
        ("namespaces", "Namespaces", kinds.NAMESPACE),
    ):
        rows = breakdown.get(name) or []
        own = {"subjects": kinds.SUBJECT, "ips": kinds.IP, "clusters": kinds.CLUSTER}
        if not rows or own.get(name) == kind or (name == "clusters" and kind == kinds.NAMESPACE):
            continue
        panels.append(
            section(
                title,
                table(
                    ("", "Calls", "Not successful"),
                    (
                        (
                            entity_link(column_kind, r["value"][:256], query=scoped)
                            if column_kind and r["value"]
                            else r["value"] or "—",
                            f"{r['count']:,}",
                            f"{r['failed']:,}" if r["failed"] else "",
                        )
                        for r in rows
                    ),
                ),
            )
        )
    for relation in view["relations"]:
        # Five columns of long names are unreadable in a third of the screen once the list grows.
        css = "panel wide" if len(relation["edges"]) > WIDE_RELATION_ROWS else "panel"
        panels.append(section(relation["heading"], _relation_table(relation, pod_attributes, scoped), css=css))
    if view["drilldown"]:
        panels.append(
            section(
                "Drill-down: subject → IP address → API call → request URI",
                _drilldown(view["drilldown"]),
                css="panel wide",
            )
        )
    panels.append(
        section(
            "Related findings",
            table(
                ("Severity", "Finding", "Cluster", "Seen", "Last seen", ""),
                (
                    (
                        severity_badge(f["severity"]),
                        link(finding_href(f["id"]), f["type"]),
                        f["cluster"],
                        f"{f['count']:,}×",
                        when(f["lastSeen"]),
                        "archived" if f["archived"] else "",
                    )
                    for f in view["findings"]
                ),
                empty="No finding names this entity.",
            ),
            css="panel wide",
        )
    )
    panels.append(graph_box(f"/api/graph/{kind}/{_path(kind, key)}?depth=2"))
    return tag(
        "div",
        tag("p", KIND_NAMES.get(kind, kind), class_="crumbs"),
        tag("h1", key, class_=f"entity-title k-{kind}"),
        scope_form(scope["start"], scope["end"], entity_href(kind, key)),
        tag("div", *panels, class_="grid"),
    )


def _path(kind: str, key: str) -> str:
    return entity_href(kind, key).removeprefix("/console/entities/").partition("/")[2]


def _profile(entity: dict[str, Any]) -> Html:
    attrs = entity["attributes"]
    pairs: list[tuple[str, Any]] = [
        ("First seen", when(entity["firstSeen"])),
        ("Last seen", when(entity["lastSeen"])),
        ("API calls counted", f"{entity['events']:,}"),
    ]
    if entity["kind"] == kinds.SUBJECT:
        pairs.append(("Type", "service account" if entity["key"].startswith(kinds.SERVICE_ACCOUNT_PREFIX) else "user"))
        pairs.append(("Groups", ", ".join(attrs.get("groups") or [])))
    if entity["kind"] == kinds.IP:
        pairs += [
            ("Country", attrs.get("country")),
            ("City", attrs.get("city")),
            (
                "Autonomous system",
                entity_link(kinds.ASN, attrs["asn"], f"AS{attrs['asn']} {attrs.get('asnOrg', '')}")
                if attrs.get("asn")
                else attrs.get("asnOrg"),  # the bundled database names the network's owner, not its number
            ),
        ]
    if entity["kind"] == kinds.ASN:
        pairs.append(("Organisation", attrs.get("org")))
    if entity["kind"] in (kinds.POD, kinds.WORKLOAD):
        pairs += [
            ("Cluster", entity_link(kinds.CLUSTER, attrs["cluster"]) if attrs.get("cluster") else None),
            (
                "Namespace",
                entity_link(kinds.NAMESPACE, f"{attrs.get('cluster', '')}/{attrs['namespace']}", attrs["namespace"])
                if attrs.get("namespace")
                else None,
            ),
            ("Created by", entity_link(kinds.SUBJECT, attrs["createdBy"]) if attrs.get("createdBy") else None),
            ("Created", when(attrs.get("createdAt"))),
            (
                "Service account",
                entity_link(kinds.SUBJECT, attrs["serviceAccount"]) if attrs.get("serviceAccount") else None,
            ),
            ("Owner", attrs.get("owner")),
        ]
    return definition_list(pairs)


def _security(attrs: dict[str, Any]) -> Html:
    if not attrs.get("images") and "hostNetwork" not in attrs:
        return tag("p", "The audit log did not carry this object's spec (audit level Metadata).", class_="empty")
    flags = [name for name in ("hostNetwork", "hostPID", "hostIPC") if attrs.get(name)]
    return definition_list(
        [
            ("Images", [Html(entity_link(kinds.IMAGE, image) + " ") for image in attrs.get("images") or []]),
            ("Privileged containers", ", ".join(attrs.get("privileged") or []) or "none"),
            ("Host namespaces", ", ".join(flags) or "none"),
            ("Host paths", ", ".join(attrs.get("hostPaths") or []) or "none"),
            ("Writable sensitive mounts", ", ".join(attrs.get("sensitiveMounts") or []) or "none"),
        ]
    )


def _observed(view: dict[str, Any], scoped: dict[str, str]) -> Html:
    observed = view["newlyObserved"]
    usual = view.get("usual") or {}
    blocks = []
    for dimension, title in OBSERVED_NAMES.items():
        kind = OBSERVED_KINDS.get(dimension)
        rows = [
            (
                entity_link(kind, item["value"], query=scoped) if _linked(kind, item) else tag("code", item["value"]),
                when(item["firstSeen"]),
                tag("span", "new", class_="tagline new"),
            )
            for item in observed.get(dimension, [])
        ]
        rows += [
            (
                entity_link(kind, item["value"]) if _linked(kind, item) else item["value"],
                when(item["firstSeen"]),
                "usual",
            )
            for item in usual.get(dimension, [])
        ]
        blocks.append(
            tag("div", tag("h3", title), table(("", "First seen", ""), rows, empty="Nothing new."), class_="observed")
        )
    return tag("div", *blocks, class_="observed-grid")


def _linked(kind: str | None, item: dict[str, Any]) -> bool:
    """Whether an observed value has a profile to link to (a network named only by its owner has none)."""
    return bool(kind) and not item.get("owner")


def _relation_table(
    relation: dict[str, Any], pod_attributes: dict[str, dict[str, Any]], scoped: dict[str, str]
) -> Html:
    end = "target" if relation["outgoing"] else "source"
    rows = []
    for edge in relation["edges"]:
        other = edge[end]
        cells: list[Any] = [
            entity_link(
                other["kind"], other["key"], query=scoped if other["kind"] in (kinds.SUBJECT, kinds.IP) else None
            )
        ]
        extra = edge["detail"]
        attrs = pod_attributes.get(other["key"]) if other["kind"] in (kinds.POD, kinds.WORKLOAD) else None
        if attrs:
            extra = _pod_line(attrs)
        cells += [extra, f"{edge['count']:,}", when(edge["first"]), when(edge["last"])]
        rows.append(cells)
    return table(("", "Detail", "Times", "First", "Last"), rows)


def _pod_line(attrs: dict[str, Any]) -> Html:
    parts: list[Any] = [", ".join(attrs.get("images") or [])]
    if attrs.get("privileged"):
        parts.append(tag("span", "privileged", class_="tagline bad"))
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if attrs.get(flag):
            parts.append(tag("span", flag, class_="tagline bad"))
    if attrs.get("hostPaths"):
        parts.append(tag("span", "hostPath " + ", ".join(attrs["hostPaths"]), class_="tagline bad"))
    return tag("span", *(Html(part + " ") if isinstance(part, Html) else part + " " for part in parts))


def _drilldown(tree: list[dict[str, Any]]) -> Html:
    def outcomes(counts: dict[str, int]) -> str:
        return ", ".join(f"{n:,} {name}" for name, n in counts.items())

    def branch(label: Any, count: int, children: list[Html]) -> Html:
        summary = tag("summary", label or "—", tag("span", f" {count:,}", class_="num"))
        return tag("li", tag("details", summary, tag("ul", *children)))

    items = []
    for subject in tree:
        ips = []
        for ip in subject["ips"]:
            calls = []
            for call in ip["calls"]:
                uris = [
                    tag("li", tag("code", u["uri"] or "—"), " ", tag("span", outcomes(u["outcomes"]), class_="hint"))
                    for u in call["uris"]
                ]
                calls.append(branch(call["call"], call["count"], uris))
            ips.append(branch(entity_link(kinds.IP, ip["ip"]) if ip["ip"] else "", ip["count"], calls))
        label = entity_link(kinds.SUBJECT, subject["subject"]) if subject["subject"] else ""
        items.append(branch(label, subject["count"], ips))
    return tag("ul", *items, class_="drill")
