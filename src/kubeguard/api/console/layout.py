"""The frame every console page shares, and the small components pages reuse."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from kubeguard.api.console.html import Html, entity_href, finding_href, h, link, tag
from kubeguard.graph import kinds, queries

KIND_NAMES = {
    kinds.CLUSTER: "Cluster",
    kinds.SUBJECT: "Kubernetes subject",
    kinds.IP: "IP address",
    kinds.POD: "Pod",
    kinds.IMAGE: "Container image",
    kinds.WORKLOAD: "Workload",
    kinds.NAMESPACE: "Namespace",
    kinds.USER_AGENT: "User agent",
    kinds.ASN: "Autonomous system",
    kinds.FINDING: "Finding",
}


def page(title: str, body: Any, *, principal: str | None = None, csrf: str = "", open_access: bool = False) -> Html:
    account: Any = ""
    if principal and not open_access:
        account = tag(
            "form",
            tag("span", "Signed in as ", tag("strong", principal), class_="who"),
            tag("input", type="hidden", name="csrf", value=csrf),
            tag("button", "Sign out", type="submit", class_="link-button"),
            method="post",
            action="/console/logout",
            class_="account",
        )
    header = tag(
        "header",
        link("/console/", "kubeguard", class_="brand"),
        tag("nav", link("/console/", "Summary"), link("/console/findings", "Findings"), aria_label="Main"),
        tag(
            "form",
            tag("label", "Search", for_="q", class_="visually-hidden"),
            tag(
                "input",
                id="q",
                name="q",
                type="search",
                placeholder="Search subjects, IPs, pods, images, finding ids  (/)",
                accesskey="k",
                autocomplete="off",
            ),
            role="search",
            action="/console/search",
            method="get",
        ),
        account,
        class_="top",
    )
    document = tag(
        "html",
        tag(
            "head",
            tag("meta", charset="utf-8"),
            tag("meta", name="viewport", content="width=device-width, initial-scale=1"),
            tag("title", f"{title} · kubeguard"),
            tag("link", rel="stylesheet", href="/console/static/console.css"),
            tag("link", rel="icon", href="/console/static/favicon.svg", type="image/svg+xml"),
        ),
        tag(
            "body",
            link("#main", "Skip to content", class_="skip"),
            header,
            tag("main", body, id="main"),
            tag("script", src="/console/static/console.js", defer=True),
        ),
        lang="en",
    )
    return Html("<!doctype html>\n" + document)


def severity_badge(severity: float) -> Html:
    from kubeguard.severity import label

    name = label(float(severity))
    return tag("span", f"{name} {float(severity):g}", class_=f"sev sev-{name.lower()}")


def entity_link(kind: str, key: str, label: str | None = None, query: dict[str, str] | None = None) -> Html:
    if kind == kinds.FINDING:
        return link(finding_href(key, query), label or key, class_="entity finding")
    return link(
        entity_href(kind, key, query), label or key, class_=f"entity k-{kind}", title=KIND_NAMES.get(kind, kind)
    )


def scope_form(start: str, end: str, action: str) -> Html:
    return tag(
        "form",
        tag("span", "Scope time (UTC)", class_="scope-label"),
        tag("label", "Start ", tag("input", name="start", value=start, size="20", pattern=r"\d{4}-.*")),
        tag("label", "End ", tag("input", name="end", value=end, size="20", pattern=r"\d{4}-.*")),
        tag("button", "Apply", type="submit"),
        tag("span", *_presets(end, action), class_="scope-presets"),
        method="get",
        action=action,
        class_="scope",
    )


def _presets(end: str, action: str) -> list[Html]:
    """Links to the last day, week and month up to the scope's end (server-side: no script needed)."""
    try:
        end_ms = queries.parse_time(end)
    except queries.ScopeError:
        return []
    separator = "&" if "?" in action else "?"
    links = []
    for text, days in (("24 h", 1), ("7 days", 7), ("30 days", 30)):
        query = urlencode({"start": queries.iso(end_ms - days * queries.DAY_MS), "end": queries.iso(end_ms)})
        links.append(link(f"{action}{separator}{query}", text))
    return links


def csrf_field(csrf: str) -> Html:
    return tag("input", type="hidden", name="csrf", value=csrf)


def graph_box(source: str, highlight: str = "") -> Html:
    """Where the script draws the neighbourhood graph (see static/console.js); a list is the fallback."""
    return tag(
        "section",
        tag("h2", "Graph"),
        tag(
            "p",
            "Click a node to expand its neighbours; press Enter on a focused node to expand it, O to open its page.",
            class_="hint",
        ),
        tag(
            "div",
            tag("p", "Loading the graph…", class_="empty"),
            class_="graph",
            data_src=source,
            data_highlight=highlight,
        ),
        class_="panel wide",
    )


def section(title: str, *body: Any, css: str = "panel") -> Html:
    return tag("section", tag("h2", title), *body, class_=css)


def when(text: str | None) -> Html:
    if not text:
        return h("—")
    return tag("time", text.replace("T", " ").replace("Z", "")[:19], datetime=text)


def not_found(title: str, message: str) -> Html:
    return tag("div", tag("h1", title), tag("p", message), class_="notice")
