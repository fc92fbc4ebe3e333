"""Microsoft Teams incoming webhook: an Adaptive Card (Workflows webhooks) or a legacy MessageCard.

Workflows ("Post to a channel when a webhook request is received") take a ``message`` whose attachment is
an Adaptive Card 1.4: a header container styled by severity (attention / warning / accent), the
description, a FactSet, and an ``Action.OpenUrl`` to the console. Office 365 connector webhooks take a
``MessageCard`` with ``themeColor`` set to the severity colour and an ``OpenUri`` action.
"""

from __future__ import annotations

from typing import Any

from kubeguard.findings.formats.summary import summarize
from kubeguard.sinks.chat import colour, facts
from kubeguard.sinks.delivery import Item, Renderer, SinkEnv
from kubeguard.sinks.http import JsonPoster, host_only
from kubeguard.sinks.options import TeamsOptions

_STYLES = {"Critical": "attention", "High": "attention", "Medium": "warning", "Low": "accent"}


def adaptive_card(item: Item, renderer: Renderer) -> dict[str, Any]:
    summary = summarize(item.finding)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "Container",
                "style": _STYLES.get(summary.severity_label, "default"),
                "bleed": True,
                "items": [
                    {"type": "TextBlock", "text": renderer.message(item), "weight": "Bolder", "wrap": True},
                ],
            },
            {"type": "TextBlock", "text": summary.description or summary.title, "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts(summary)]},
        ],
    }
    if item.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in kubeguard", "url": item.link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def message_card(item: Item, renderer: Renderer) -> dict[str, Any]:
    summary = summarize(item.finding)
    card: dict[str, Any] = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": colour(summary.severity_label).lstrip("#"),
        "summary": renderer.message(item)[:200],
        "title": summary.title or summary.type,
        "sections": [
            {
                "activityTitle": renderer.message(item),
                "text": summary.description,
                "facts": [{"name": name, "value": value} for name, value in facts(summary)],
            }
        ],
    }
    if item.link:
        card["potentialAction"] = [
            {"@type": "OpenUri", "name": "Open in kubeguard", "targets": [{"os": "default", "uri": item.link}]}
        ]
    return card


class TeamsDestination(JsonPoster):
    def __init__(self, options: TeamsOptions, env: SinkEnv) -> None:
        build = adaptive_card if options.card == "adaptive" else message_card
        name = options.name or f"teams:{host_only(options.url)}"
        super().__init__(name, options.url, options.timeout_seconds, lambda item: build(item, env.renderer))
