"""Finding formats shared by ``kubeguard scan --format`` and every sink.

- ``guardduty``: the bare GuardDuty finding (camelCase wire form, as GetFindings returns it);
- ``eventbridge``: GuardDuty's EventBridge envelope around it;
- ``asff``: AWS Security Finding Format, for Security Hub;
- ``ocsf``: OCSF Detection Finding (class 2004), for Security Lake and OCSF SIEMs;
- ``text``: one line for chat, syslog and terminals.

A ``link`` (the console deep link from ``[serve] public_url``) is carried by every format that has a place
for one: ``SourceUrl`` in ASFF, ``finding_info.src_url`` in OCSF, the EventBridge envelope's ``resources``, the
text line. The bare ``guardduty`` form stays exactly the stored finding (GuardDuty's model has no member for
it, and consumers validate against that model); sinks that send it add the link beside it (a header or a
message attribute).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from kubeguard.findings.formats.asff import asff_finding
from kubeguard.findings.formats.eventbridge import eventbridge_event
from kubeguard.findings.formats.ocsf import ocsf_finding
from kubeguard.findings.formats.text import text_line

FORMATS = ("guardduty", "eventbridge", "asff", "ocsf", "text")


class UnknownFormat(ValueError):
    pass


def render(name: str, finding: Mapping[str, Any], link: str = "") -> dict[str, Any] | str:
    """``finding`` in format ``name``: a JSON document, or a string for ``text``."""
    if name == "guardduty":
        return dict(finding)
    if name == "eventbridge":
        return eventbridge_event(finding, link=link)
    if name == "asff":
        return asff_finding(finding, link)
    if name == "ocsf":
        return ocsf_finding(finding, link)
    if name == "text":
        return text_line(finding, link)
    raise UnknownFormat(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")


def encode(name: str, finding: Mapping[str, Any], link: str = "") -> bytes:
    """``render`` as bytes: compact JSON, or the UTF-8 text line."""
    rendered = render(name, finding, link)
    return rendered.encode() if isinstance(rendered, str) else orjson.dumps(rendered)
