"""Slack incoming webhook: a colour-coded attachment with Block Kit sections and a console button.

Payload as Slack documents for incoming webhooks: ``text`` (the notification and fallback line) plus one
``attachments`` entry whose ``color`` is the severity colour and whose ``blocks`` hold the title linked to
the console, the description, the key facts as fields and an "Open in kubeguard" button. Text is escaped as
Slack's mrkdwn requires (``&``, ``<``, ``>``). Slack answers 200 ``ok``; 4xx bodies say why.
"""

from __future__ import annotations

from typing import Any

from kubeguard.findings.formats.summary import summarize
from kubeguard.sinks.chat import colour, facts
from kubeguard.sinks.delivery import Item, Renderer, SinkEnv
from kubeguard.sinks.http import JsonPoster, host_only
from kubeguard.sinks.options import SlackOptions

MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(item: Item, renderer: Renderer) -> dict[str, Any]:
    summary = summarize(item.finding)
    line = renderer.message(item)
    title = escape(summary.title or summary.type)
    heading = f"*<{item.link}|{title}>*" if item.link else f"*{title}*"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{heading}\n{escape(summary.description)}")}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{escape(value)}", 2000)}
                for name, value in facts(summary)[:MAX_FIELDS]
            ],
        },
    ]
    if item.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open in kubeguard"}, "url": item.link}
                ],
            }
        )
    return {
        "text": escape(line),
        "attachments": [{"color": colour(summary.severity_label), "fallback": escape(line), "blocks": blocks}],
    }


class SlackDestination(JsonPoster):
    def __init__(self, options: SlackOptions, env: SinkEnv) -> None:
        name = options.name or f"slack:{host_only(options.url)}"
        super().__init__(name, options.url, options.timeout_seconds, lambda item: slack_message(item, env.renderer))


def _cut(text: str, limit: int = MAX_SECTION_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
