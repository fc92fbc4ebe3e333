"""What a destination is given and how it reports failure; shared by every sink module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template
from typing import Any, Protocol

from kubeguard.findings.formats import encode, render
from kubeguard.findings.formats.summary import summarize
from kubeguard.findings.formats.text import text_line


@dataclass(frozen=True, slots=True)
class Item:
    """One finding to deliver, with its console link (empty when ``[serve] public_url`` is unset)."""

    finding: dict[str, Any]
    link: str

    @property
    def archived(self) -> bool:
        return bool((self.finding.get("service") or {}).get("archived"))


class DeliveryError(Exception):
    """The destination failed in a way that may pass: the events are retried with backoff."""


class PermanentFailure(DeliveryError):
    """The destination refused the events themselves; retrying cannot help, so they are dropped."""


class PartialFailure(DeliveryError):
    """Some events of a batch failed: ``failed`` maps their index in the batch to (reason, permanent)."""

    def __init__(self, failed: Mapping[int, tuple[str, bool]]) -> None:
        self.failed = dict(failed)
        reasons = sorted({reason for reason, _ in self.failed.values()})
        super().__init__(f"{len(self.failed)} of the batch failed: {'; '.join(reasons)[:500]}")


class Destination(Protocol):
    """A sink's transport. ``deliver`` either returns (all delivered) or raises a DeliveryError."""

    name: str
    #: How many items one ``deliver`` call takes.
    batch_size: int

    def deliver(self, items: list[Item]) -> None: ...

    def close(self) -> None: ...


class Renderer:
    """A sink's format and message template applied to an item."""

    def __init__(self, format_name: str, template: str = "") -> None:
        self.format = format_name
        self.template = Template(template) if template else None

    def document(self, item: Item) -> dict[str, Any] | str:
        return render(self.format, item.finding, item.link)

    def body(self, item: Item) -> bytes:
        return encode(self.format, item.finding, item.link)

    def message(self, item: Item) -> str:
        """The human-facing line: the sink's template if it has one, else the text format."""
        if self.template is None:
            return text_line(item.finding, item.link)
        return self.template.safe_substitute(template_fields(item))


@dataclass(frozen=True, slots=True)
class SinkEnv:
    """What building a destination needs besides its options: its renderer and the service's identity."""

    renderer: Renderer
    region: str = "us-east-1"
    account: str = ""



def template_fields(item: Item) -> dict[str, Any]:
    facts = summarize(item.finding)
    return {
        "id": facts.id,
        "type": facts.type,
        "title": facts.title,
        "description": facts.description,
        "severity": f"{facts.severity:g}",
        "severity_label": facts.severity_label,
        "cluster": facts.cluster,
        "principal": facts.principal,
        "source_ip": facts.source_ip,
        "verb": facts.verb,
        "request_uri": facts.request_uri,
        "count": facts.count,
        "account": item.finding.get("accountId", ""),
        "region": item.finding.get("region", ""),
        "link": item.link,
        "first_seen": facts.first_seen,
        "last_seen": facts.last_seen,
    }


#: Statuses that say the request itself is wrong; anything else (auth, not found, throttling, 5xx) may pass
#: once the operator or the service fixes it, so those events wait in the outbox instead of being lost.
REFUSED_STATUSES = frozenset({400, 405, 411, 413, 414, 415, 422})


def http_failure(status: int, text: str = "") -> DeliveryError:
    detail = f"HTTP {status}" + (f": {text.strip()[:300]}" if text.strip() else "")
    return PermanentFailure(detail) if status in REFUSED_STATUSES else DeliveryError(detail)


def one_by_one(items: list[Item], send: Callable[[list[Item]], None]) -> None:
    """Send a batch; if the destination refuses it whole, resend each item to find the bad ones."""
    try:
        send(items)
        return
    except PermanentFailure:
        if len(items) == 1:
            raise
    failed: dict[int, tuple[str, bool]] = {}
    for index, item in enumerate(items):
        try:
            send([item])
        except PermanentFailure as error:
            failed[index] = (str(error), True)
        except Exception as error:  # noqa: BLE001 - anything else is retried like a transport error
            failed[index] = (str(error) or type(error).__name__, False)
    if failed:
        raise PartialFailure(failed)
