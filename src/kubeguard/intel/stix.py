"""Address values from a STIX 1.x package, read with defusedxml.

GuardDuty's STIX format is STIX 1.x XML whose CybOX ``AddressObjectType`` properties carry the IPs:
``<AddressObject:Address_Value>`` holds one address or CIDR, or, with ``condition="InclusiveBetween"``,
a range written ``first##comma##last``. STIX 1.x also uses ``##comma##`` to list several values with other
conditions, so those are split into separate entries.

The parser is SAX, so a large package streams and each value keeps its line number. It runs with DTDs
forbidden outright: a threat list has no business declaring entities, and refusing every DTD stops
billion-laughs, quadratic blow-up and external-entity attacks before any expansion happens.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.sax import SAXException
from xml.sax.handler import ContentHandler, feature_namespaces
from xml.sax.xmlreader import AttributesNSImpl, Locator

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

__all__ = ["StixEntry", "StixError", "iter_stix"]

_XSI_TYPE = ("http://www.w3.org/2001/XMLSchema-instance", "type")
_IP_CATEGORIES = frozenset({"ipv4-addr", "ipv6-addr", "ipv4-net", "ipv6-net", "cidr", ""})
_SEPARATOR = "##comma##"
_MAX_VALUE_CHARS = 4096


class StixError(ValueError):
    """The document is refused: not well-formed, or it uses DTDs or entities."""


@dataclass(frozen=True, slots=True)
class StixEntry:
    """One value: an address/CIDR (``last`` empty) or an inclusive range.

    ``ip`` is False for non-IP address categories (e-mail, MAC), which a caller counts as ignored;
    ``error`` is set when the value is malformed at the STIX level.
    """

    line: int
    first: str
    last: str = ""
    ip: bool = True
    error: str = ""


def iter_stix(data: bytes) -> list[StixEntry]:
    """All address values in document order; raises :class:`StixError` if the XML is refused."""
    handler = _Handler()
    parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setFeature(feature_namespaces, True)
    parser.setContentHandler(handler)
    try:
        parser.parse(io.BytesIO(data))
    except DefusedXmlException as exc:
        raise StixError(f"hostile XML refused: {type(exc).__name__}") from exc
    except SAXException as exc:
        raise StixError(f"not well-formed XML: {exc.getMessage()}") from exc
    return handler.entries


class _Handler(ContentHandler):
    """Tracks whether we are inside an AddressObject's properties, and collects its Address_Value text."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[StixEntry] = []
        self._locator: Locator | None = None
        self._category: str | None = None  # set while inside an AddressObjectType Properties element
        self._depth = 0
        self._value: list[str] | None = None
        self._value_chars = 0
        self._condition = ""
        self._line = 0

    def setDocumentLocator(self, locator: Locator) -> None:  # noqa: N802 (SAX API name)
        self._locator = locator

    def startElementNS(  # noqa: N802
        self, name: tuple[str | None, str], qname: str | None, attrs: AttributesNSImpl
    ) -> None:
        local = name[1]
        if self._category is not None:
            self._depth += 1
            if local == "Address_Value":
                self._value, self._value_chars = [], 0
                self._condition = attrs.get((None, "condition"), "")
                self._line = self._locator.getLineNumber() if self._locator else 0
        elif local == "Properties" and attrs.get(_XSI_TYPE, "").endswith("AddressObjectType"):
            self._category = attrs.get((None, "category"), "").strip().lower()
            self._depth = 0

    def characters(self, content: str) -> None:
        if self._value is not None and self._value_chars < _MAX_VALUE_CHARS:
            self._value.append(content)
            self._value_chars += len(content)

    def endElementNS(self, name: tuple[str | None, str], qname: str | None) -> None:  # noqa: N802
        if self._category is None:
            return
        if self._depth == 0:
            self._category = None
            return
        self._depth -= 1
        if name[1] == "Address_Value" and self._value is not None:
            self._emit("".join(self._value).strip())
            self._value = None

    def _emit(self, text: str) -> None:
        is_ip = self._category in _IP_CATEGORIES
        if self._value_chars >= _MAX_VALUE_CHARS:
            self.entries.append(StixEntry(self._line, text, "", is_ip, "address value too long"))
            return
        parts = [part.strip() for part in text.split(_SEPARATOR)]
        if self._condition != "InclusiveBetween":
            self.entries.extend(StixEntry(self._line, part, "", is_ip) for part in parts)
        elif len(parts) == 2 and all(parts):
            self.entries.append(StixEntry(self._line, parts[0], parts[1], is_ip))
        else:
            error = "InclusiveBetween needs first##comma##last"
            self.entries.append(StixEntry(self._line, text, "", is_ip, error))
