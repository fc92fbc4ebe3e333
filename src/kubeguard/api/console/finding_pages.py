"""``/console/findings`` (the list), ``/console/findings/{id}`` (one finding) and its suppression form."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import orjson

from kubeguard.api.console import charts
from kubeguard.api.console.html import Html, definition_list, finding_href, link, table, tag
from kubeguard.api.console.layout import csrf_field, entity_link, graph_box, scope_form, section, severity_badge, when
from kubeguard.graph import kinds

FILTERS = ("severity", "type", "cluster", "subject", "archived", "q")
SORT_NAMES = {
    "updated": "Last updated",
    "severity": "Severity",
    "count": "Times seen",
    "type": "Type",
    "first": "First seen",
}


def render_list(view: dict[str, Any], filters: dict[str, str], sort: str) -> Html:
    facets = view["facets"]

    def select(name: str, label: str, options: list[tuple[str, str]], current: str | None = None) -> Html:
        chosen = filters.get(name, "") if current is None else current
        return tag(
            "label",
            label,
            " ",
            tag(
                "select",
                *(tag("option", text, value=value, selected=chosen == value) for value, text in options),
                name=name,
            ),
        )

    form = tag(
        "form",
        select(
            "severity",
            "Severity",
            [("", "any"), ("critical", "Critical"), ("high", "High"), ("medium", "Medium"), ("low", "Low")],
        ),
        select("type", "Type", [("", "any"), *((t, t) for t in facets["types"])]),
        select("cluster", "Cluster", [("", "any"), *((c, c) for c in facets["clusters"])]),
        tag("label", "Subject ", tag("input", name="subject", value=filters.get("subject", ""), size="18")),
        select("archived", "Archived", [("false", "active only"), ("true", "archived only"), ("all", "both")]),
        tag("label", "Text ", tag("input", name="q", type="search", value=filters.get("q", ""), size="18")),
        select("sort", "Sort by", list(SORT_NAMES.items()), current=sort),
        tag("button", "Filter", type="submit"),
        method="get",
        action="/console/findings",
        class_="filters",
    )
    groups = table(
        ("Finding type", "Findings", "Seen", "Worst"),
        (
            (
                link("/console/findings?" + urlencode({**_kept(filters), "type": g["type"]}), g["type"]),
                f"{g['findings']:,}",
                f"seen {g['occurrences']:,} times",
                severity_badge(g["maxSeverity"]),
            )
            for g in view["groups"]
        ),
        empty="No finding matches these filters.",
        class_="groups",
    )
    rows = table(
        ("Severity", "Type", "Title", "Cluster", "Subject", "Seen", "Last seen", ""),
        (
            (
                severity_badge(f["severity"]),
                link(finding_href(f["id"]), f["type"]),
                f["title"],
                f["cluster"],
                entity_link(kinds.SUBJECT, f["subject"]) if f["subject"] else "",
                f"{f['count']:,}×",
                when(f["lastSeen"]),
                tag("span", "archived", class_="tagline") if f["archived"] else "",
            )
            for f in view["findings"]
        ),
        empty="",
        class_="findings",
    )
    pager = []
    if view["pages"] > 1:
        kept = _kept(filters)
        for number in pager_numbers(view["page"], view["pages"]):
            if number is None:
                pager.append(tag("span", "…", class_="gap"))
                continue
            query = urlencode({**kept, "sort": sort, "page": number})
            pager.append(
                tag("strong", number) if number == view["page"] else link(f"/console/findings?{query}", number)
            )
    return tag(
        "div",
        tag("h1", "Findings"),
        tag("p", f"{view['total']:,} findings match.", class_="lead"),
        form,
        section("By type", groups, css="panel wide"),
        rows,
        tag("nav", *pager, class_="pager", aria_label="Pages") if pager else "",
    )


#: Pages linked on each side of the current one; the first and last are always linked.
PAGER_REACH = 3


def pager_numbers(current: int, pages: int) -> list[int | None]:
    """The page numbers the pager links, in order, with None for each gap between them.

    A link per page made a nav of 20,000 links at a million findings, most of the findings page's 280 ms:
    the first, the last and the pages within :data:`PAGER_REACH` of the current one are enough to walk
    anywhere in a few steps (a gap of one page is shown as its number, not as a gap)."""
    shown = {1, pages, *range(max(1, current - PAGER_REACH), min(pages, current + PAGER_REACH) + 1)}
    numbers: list[int | None] = []
    previous = 0
    for number in sorted(shown):
        if number - previous == 2:
            numbers.append(number - 1)
        elif previous and number - previous > 2:
            numbers.append(None)
        numbers.append(number)
        previous = number
    return numbers


def _kept(filters: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in filters.items() if v and k in FILTERS}


def render_finding(view: dict[str, Any], csrf: str, message: str = "") -> Html:
    finding = view["finding"]
    line = view["summary"]
    service = finding.get("service") or {}
    action = (service.get("action") or {}).get("kubernetesApiCallAction") or {}
    details = (finding.get("resource") or {}).get("kubernetesDetails") or {}
    user = details.get("kubernetesUserDetails") or {}
    workload = details.get("kubernetesWorkloadDetails") or {}
    cluster = line["cluster"]
    scope = view["scope"]
    scoped = {"start": scope["start"], "end": scope["end"]}
    remote = action.get("remoteIpDetails") or {}
    org = remote.get("organization") or {}
    country = (remote.get("country") or {}).get("countryName")
    namespace = workload.get("namespace") or action.get("namespace") or ""

    who = definition_list(
        [
            ("Subject", entity_link(kinds.SUBJECT, user["username"], query=scoped) if user.get("username") else None),
            ("Groups", ", ".join(user.get("groups") or [])),
            ("Impersonated", (details.get("kubernetesUserDetails") or {}).get("impersonatedUser", {}).get("username")),
            (
                "Source IPs",
                [Html(entity_link(kinds.IP, ip, query=scoped) + " ") for ip in action.get("sourceIPs") or []],
            ),
            (
                "Location",
                " · ".join(
                    x
                    for x in (
                        country,
                        org.get("asnOrg"),
                        f"AS{org['asn']}" if org.get("asn") not in (None, "0") else "",
                    )
                    if x and x != "UNKNOWN"
                ),
            ),
            (
                "User agent",
                entity_link(kinds.USER_AGENT, action["userAgent"][:256]) if action.get("userAgent") else None,
            ),
        ]
    )
    where = definition_list(
        [
            ("Cluster", entity_link(kinds.CLUSTER, cluster, query=scoped) if cluster else None),
            ("Namespace", entity_link(kinds.NAMESPACE, f"{cluster}/{namespace}", namespace) if namespace else None),
            (
                "API call",
                _api_call(action),
            ),
            ("Object", action.get("resourceName")),
            ("Request URI", tag("code", action["requestUri"]) if action.get("requestUri") else None),
            ("Status code", action.get("statusCode")),
            ("Workload", _workload(workload, namespace)),
            (
                "Images",
                [
                    Html(entity_link(kinds.IMAGE, c["image"]) + " ")
                    for c in workload.get("containers") or []
                    if c.get("image")
                ],
            ),
            ("Host paths", ", ".join(v.get("hostPath", {}).get("path", "") for v in workload.get("volumes") or [])),
        ]
    )
    timing = definition_list(
        [
            ("First seen", when(service.get("eventFirstSeen"))),
            ("Last seen", when(service.get("eventLastSeen"))),
            ("Seen", f"{service.get('count', 1):,} times"),
            ("Created", when(finding.get("createdAt"))),
            ("Updated", when(finding.get("updatedAt"))),
            ("Feedback", {"USEFUL": "Useful", "NOT_USEFUL": "Not useful"}.get(service.get("userFeedback") or "", "")),
        ]
    )
    why = [tag("p", finding.get("description", ""))]
    anomaly = (service.get("detection") or {}).get("anomaly")
    if anomaly:
        why.append(_anomaly(anomaly))
    evidence = (service.get("evidence") or {}).get("threatIntelligenceDetails") or []
    if evidence:
        why.append(definition_list([("Threat list", ", ".join(e.get("threatListName", "") for e in evidence))]))
    if action.get("parameters"):
        why.append(definition_list([("Parameters", tag("code", action["parameters"]))]))
    actions = _actions(finding["id"], line, csrf)
    activity = view.get("subjectActivity")
    activity_panel = ""
    if activity and activity["total"]:
        activity_panel = section(
            "Subject's API activity in the scope time",
            charts.stacked_bars(
                activity["hours"],
                activity["outcomes"],
                title=f"API calls by {user.get('username')} per hour by outcome",
            ),
            css="panel wide",
        )
    related = table(
        ("Severity", "Finding", "Cluster", "Shares", "Last seen"),
        (
            (
                severity_badge(r["severity"]),
                link(finding_href(r["id"]), r["type"]),
                r["cluster"],
                [Html(entity_link(v["kind"], v["key"]) + " ") for v in r["via"]],
                when(r["lastSeen"]),
            )
            for r in view["related"]
        ),
        empty="No other finding names this finding's subject, addresses or workload.",
    )
    raw = tag(
        "details",
        tag("summary", "GuardDuty finding JSON"),
        tag("pre", orjson.dumps(finding, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(), class_="json"),
        class_="panel wide",
    )
    return tag(
        "div",
        tag("p", link("/console/findings", "← Findings"), class_="crumbs"),
        tag("h1", severity_badge(finding["severity"]), " ", finding["type"], class_="finding-title"),
        tag("p", finding.get("title", ""), class_="lead"),
        tag("p", message, class_="flash", role="status") if message else "",
        tag(
            "p",
            tag("span", "Archived", class_="tagline") if line["archived"] else "",
            " id ",
            tag("code", finding["id"]),
        ),
        actions,
        scope_form(scope["start"], scope["end"], finding_href(finding["id"])),
        tag(
            "div",
            section("Who", who),
            section("Where and what", where),
            section("When", timing),
            section("Why it fired", *why),
            activity_panel,
            graph_box(f"/api/graph/finding/{finding['id']}?depth=2", highlight=f"finding:{finding['id']}"),
            section("Related findings", related, css="panel wide"),
            raw,
            class_="grid",
        ),
    )


def _api_call(action: dict[str, Any]) -> str:
    resource = action.get("resource", "")
    if action.get("subresource"):
        resource = f"{resource}/{action['subresource']}"
    return f"{action.get('verb', '')} {resource}".strip()


def _workload(workload: dict[str, Any], namespace: str) -> Html | None:
    name = workload.get("name")
    if not name:
        return None
    if workload.get("type") == "pods":
        return entity_link(kinds.POD, f"{namespace}/{name}")
    return entity_link(kinds.WORKLOAD, f"{namespace}/{workload.get('type', '')}/{name}")


def _anomaly(anomaly: dict[str, Any]) -> Html:
    rows = []
    for scope, features in ((anomaly.get("unusual") or {}).get("behavior") or {}).items():
        for feature, item in features.items():
            observations = item.get("observations") or {}
            rows.append(
                (scope, feature, item.get("profileSubtype", ""), ", ".join(map(str, observations.get("text") or [])))
            )
    usual = []
    for scope, features in (anomaly.get("profiles") or {}).items():
        for feature, items in features.items():
            for item in items:
                texts = (item.get("observations") or {}).get("text") or []
                usual.append((scope, feature, item.get("profileSubtype", ""), ", ".join(map(str, texts[:10]))))
    return tag(
        "div",
        tag("h3", "What was unusual"),
        table(("Scope", "Feature", "Kind", "Observed"), rows, empty="—"),
        tag("h3", "The baseline it was compared with"),
        table(("Scope", "Feature", "Kind", "Usual values"), usual, empty="—"),
        class_="anomaly",
    )


def _actions(finding_id: str, line: dict[str, Any], csrf: str) -> Html:
    base = finding_href(finding_id)

    def button(path: str, text: str, value: str = "", css: str = "") -> Html:
        return tag(
            "form",
            csrf_field(csrf),
            tag("input", type="hidden", name="feedback", value=value) if value else "",
            tag("button", text, type="submit", class_=css or None),
            method="post",
            action=f"{base}/{path}",
        )

    archive = button("unarchive", "Unarchive") if line["archived"] else button("archive", "Archive", css="primary")
    feedback = line.get("feedback")
    return tag(
        "div",
        archive,
        button("feedback", "✓ Useful" if feedback == "USEFUL" else "Useful", "USEFUL"),
        button("feedback", "✓ Not useful" if feedback == "NOT_USEFUL" else "Not useful", "NOT_USEFUL"),
        link(f"{base}/suppress", "Suppress findings like this", class_="button"),
        class_="actions",
    )


FIELD_NAMES = {
    "type": "Finding type",
    "resource.eksClusterDetails.name": "Cluster",
    "resource.kubernetesDetails.kubernetesUserDetails.username": "Kubernetes username",
    "service.action.kubernetesApiCallAction.namespace": "Namespace",
    "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.imagePrefix": "Image prefix",
    "service.action.kubernetesApiCallAction.remoteIpDetails.ipAddressV4": "Caller IPv4 address",
}


def render_suppress(
    finding: dict[str, Any],
    fields: dict[str, list[str]],
    chosen: set[str],
    preview: int,
    csrf: str,
    name: str,
    error: str = "",
) -> Html:
    rows = []
    for field, values in fields.items():
        rows.append(
            tag(
                "tr",
                tag(
                    "td",
                    tag(
                        "input",
                        type="checkbox",
                        name="field",
                        value=field,
                        checked=field in chosen,
                        id=f"f-{field}",
                        data_values=json.dumps(values),
                    ),
                ),
                tag("td", tag("label", FIELD_NAMES.get(field, field), for_=f"f-{field}")),
                tag("td", tag("code", ", ".join(values))),
            )
        )
    base = finding_href(finding["id"])
    return tag(
        "div",
        tag("p", link(base, "← Back to the finding"), class_="crumbs"),
        tag("h1", "Suppress findings like this"),
        tag(
            "p",
            "A suppression rule is a saved filter with action ARCHIVE: new findings that match it are archived on "
            "arrival and not published. Choose the fields that must match.",
            class_="lead",
        ),
        tag("p", error, class_="flash error", role="alert") if error else "",
        tag(
            "form",
            csrf_field(csrf),
            tag("table", tag("tbody", *rows), class_="criteria"),
            tag(
                "p",
                "This rule matches ",
                tag("strong", str(preview), id="preview-count"),
                " active finding(s) now.",
                class_="preview",
                aria_live="polite",
            ),
            tag(
                "label",
                "Rule name ",
                tag("input", name="name", value=name, required=True, pattern=r"[A-Za-z0-9._\-]{3,64}", size="40"),
            ),
            tag(
                "label",
                tag("input", type="checkbox", name="archive_existing", value="1"),
                " also archive the findings it matches now",
            ),
            tag(
                "div",
                tag("button", "Preview", type="submit", formmethod="get", formaction=f"{base}/suppress"),
                tag("button", "Save suppression rule", type="submit", class_="primary"),
                class_="actions",
            ),
            method="post",
            action=f"{base}/suppress",
            class_="suppress",
            data_finding=finding["id"],
        ),
    )
