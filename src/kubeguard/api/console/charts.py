"""Charts as inline SVG, drawn on the server: no script, no library, readable without JavaScript.

A stacked bar chart serves both the activity panels (API calls per hour by outcome) and the summary
(findings per day by severity). Colours are CSS classes so that the stylesheet decides them.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubeguard.api.console.html import Html, tag

WIDTH, HEIGHT = 720, 180
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 44, 22, 8


def stacked_bars(
    labels: Sequence[str],
    series: dict[str, Sequence[int]],
    *,
    title: str,
    tick_every: int = 6,
    tick_label=lambda label: label[11:16],
) -> Html:
    """One bar per label, stacked by series (in the given order), with a y scale and a legend."""
    count = len(labels)
    totals = [sum(values[i] for values in series.values()) for i in range(count)]
    peak = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 4, HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    step = plot_w / max(count, 1)
    bar_w = max(step * 0.8, 1)
    shapes: list[Html] = []
    for i, label in enumerate(labels):
        x = MARGIN_LEFT + i * step
        y = MARGIN_TOP + plot_h
        for name, values in series.items():
            value = values[i]
            if not value:
                continue
            height = value / peak * plot_h
            y -= height
            shapes.append(
                tag(
                    "rect",
                    tag("title", f"{label}: {value} {name}"),
                    x=f"{x:.1f}",
                    y=f"{y:.1f}",
                    width=f"{bar_w:.1f}",
                    height=f"{max(height, 0.5):.1f}",
                    class_=f"s-{name}",
                )
            )
        if i % tick_every == 0:
            shapes.append(tag("text", tick_label(label), x=f"{x:.1f}", y=str(HEIGHT - 6), class_="tick"))
    for fraction in (0, 0.5, 1):
        y = MARGIN_TOP + plot_h * (1 - fraction)
        shapes.append(tag("line", x1=str(MARGIN_LEFT - 4), x2=str(WIDTH), y1=f"{y:.1f}", y2=f"{y:.1f}", class_="grid"))
        shapes.append(tag("text", f"{peak * fraction:.0f}", x="2", y=f"{y + 4:.1f}", class_="tick"))
    legend = tag(
        "ul",
        *(
            tag("li", tag("span", "", class_=f"swatch s-{name}"), f"{name} {sum(values):,}")
            for name, values in series.items()
            if sum(values)
        ),
        class_="legend",
    )
    svg = tag(
        "svg",
        tag("title", title),
        *shapes,
        viewBox=f"0 0 {WIDTH} {HEIGHT}",
        role="img",
        aria_label=title,
        class_="chart",
        preserveAspectRatio="none",
    )
    return tag("figure", svg, legend, class_="chart-box")


def bar_list(rows: Sequence[tuple[Html | str, int]], *, css: str = "s-bar") -> Html:
    """Horizontal bars for a ranked list (findings by type, by cluster)."""
    peak = max((value for _, value in rows), default=0) or 1
    items = []
    for label, value in rows:
        width = max(value / peak * 200, 1)
        bar = tag(
            "svg",
            tag("rect", x="0", y="2", width=f"{width:.0f}", height="10", class_=css),
            width="204",
            height="14",
            aria_hidden="true",
        )
        items.append(tag("li", bar, tag("span", f"{value:,}", class_="num"), " ", label))
    return tag("ul", *items, class_="bars")
