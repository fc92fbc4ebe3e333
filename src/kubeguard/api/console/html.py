"""A very small HTML builder: everything is escaped unless it is already :class:`Html`.

The console renders its pages on the server. Values from audit logs (usernames, user agents, request
paths, object names) are attacker-controlled, so nothing reaches a page unescaped: :func:`h` escapes any
text, and only markup built by these helpers is trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote, urlencode


class Html(str):
    """Markup that is already safe to emit."""

    __slots__ = ()


Fragment = "Html | str | int | float | None | Iterable[Any]"


def h(value: Any) -> Html:
    """``value`` as safe markup: Html passes through, iterables are joined, everything else escaped."""
    if value is None:
        return Html("")
    if isinstance(value, Html):
        return value
    if isinstance(value, str | int | float):
        return Html(escape(str(value), quote=True))
    return Html("".join(h(item) for item in value))


def tag(element: str, /, *children: Any, **attributes: Any) -> Html:
    """``<name attributes>children</name>``; ``class_`` → ``class``, ``data_x`` → ``data-x``; True → bare."""
    parts = [element]
    for key, value in attributes.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(attr if value is True else f'{attr}="{escape(str(value), quote=True)}"')
    opening = "<" + " ".join(parts) + ">"
    if element in ("input", "meta", "link", "br", "hr", "img"):
        return Html(opening)
    return Html(opening + h(children) + f"</{element}>")


def link(href: str, *children: Any, **attributes: Any) -> Html:
    return tag("a", *children, href=href, **attributes)


def path_part(value: str, *, keep_slashes: bool = False) -> str:
    """One URL path segment (or several, for image references and pods, when ``keep_slashes``)."""
    return quote(value, safe="/:@" if keep_slashes else ":@")


def entity_href(kind: str, key: str, query: dict[str, str] | None = None) -> str:
    """The deep link of an entity's profile: pods and images keep their slashes, as in the issue's links."""
    keep = kind in ("pod", "image", "namespace", "workload")
    href = f"/console/entities/{kind}/{path_part(key, keep_slashes=keep)}"
    return href + ("?" + urlencode(query) if query else "")


def finding_href(finding_id: str, query: dict[str, str] | None = None) -> str:
    return f"/console/findings/{path_part(finding_id)}" + ("?" + urlencode(query) if query else "")


def table(
    headers: Iterable[Any], rows: Iterable[Iterable[Any]], *, empty: str = "Nothing in this scope.", **attrs: Any
) -> Html:
    rendered = [tag("tr", *(tag("td", cell) for cell in row)) for row in rows]
    if not rendered:
        return tag("p", empty, class_="empty")
    head = tag("thead", tag("tr", *(tag("th", cell, scope="col") for cell in headers)))
    return tag("table", head, tag("tbody", *rendered), **attrs)


def definition_list(pairs: Iterable[tuple[Any, Any]]) -> Html:
    items = []
    for term, value in pairs:
        if value in (None, "", [], ()):
            continue
        items.append(Html(tag("dt", term) + tag("dd", value)))
    return tag("dl", *items)
