"""Weak signals: evidence that is not a finding by itself but says a subject's credentials moved.

They come from the behaviour evidence the anomaly detectors already attach to their findings
(``service.detection.anomaly.unusual.behavior.USER``): when a subject's call was judged with an
ASN organisation, a network or a user agent that is UNSEEN or RARE in *that subject's own* profile, the
subject was used from somewhere new. Threat-intelligence evidence (a listed or Tor address) is one too.

| signal name                                   | from                                    | indicator            |
|-----------------------------------------------|-----------------------------------------|----------------------|
| ``Kubernetes subject used from a new ASN``    | unusual USER ``asnOrg``                 | UNUSUAL_ASN_FOR_USER |
| ``Kubernetes subject used from a new network``| unusual USER ``network`` (a /24 or /48) | SUSPICIOUS_NETWORK   |
| ``Kubernetes subject used with a new client`` | unusual USER ``userAgent``              | SUSPICIOUS_USER_AGENT|
| ``Call from a flagged IP address``            | ``evidence.threatIntelligenceDetails``  | MALICIOUS_IP/TOR_IP  |

All of them put the chain in the ACCESS stage (see :mod:`kubeguard.correlate.tactics`). Being derived
from findings, they are a pure function of the findings and need no state of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NEW_ASN = "Kubernetes subject used from a new ASN"
NEW_NETWORK = "Kubernetes subject used from a new network"
NEW_USER_AGENT = "Kubernetes subject used with a new client"
FLAGGED_IP = "Call from a flagged IP address"

_FEATURES = {"asnOrg": NEW_ASN, "network": NEW_NETWORK, "userAgent": NEW_USER_AGENT}
_NEW = ("UNSEEN", "RARE")


@dataclass(slots=True)
class WeakSignal:
    """One weak signal of one subject, folded over every finding that showed it."""

    name: str
    value: str
    actor: str
    first_ms: int
    last_ms: int
    finding_ids: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    indicator: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.actor, self.value)


def unusual_user_behaviour(finding: dict[str, Any]) -> dict[str, str]:
    """``{feature: value}`` of the subject's own features that were UNSEEN or RARE in ``finding``."""
    anomaly = ((finding.get("service") or {}).get("detection") or {}).get("anomaly") or {}
    behaviour = ((anomaly.get("unusual") or {}).get("behavior") or {}).get("USER") or {}
    found = {}
    for feature, observed in behaviour.items():
        texts = (observed.get("observations") or {}).get("text") or []
        if observed.get("profileSubtype") in _NEW and texts:
            found[feature] = texts[0]
    return found


def flagged_addresses(finding: dict[str, Any]) -> list[tuple[str, str]]:
    """(address, indicator key) for each threat-intelligence match the finding carries."""
    evidence = ((finding.get("service") or {}).get("evidence") or {}).get("threatIntelligenceDetails") or []
    call = ((finding.get("service") or {}).get("action") or {}).get("kubernetesApiCallAction") or {}
    remote = call.get("remoteIpDetails") or {}
    address = remote.get("ipAddressV4") or remote.get("ipAddressV6") or ""
    found = []
    for detail in evidence:
        listed = " ".join(detail.get("threatNames") or []) + " " + detail.get("threatListName", "")
        found.append((address, "TOR_IP" if "tor" in listed.lower() else "MALICIOUS_IP"))
    return found


def weak_signals(members: list[tuple[dict[str, Any], str, int, int]]) -> list[WeakSignal]:
    """Weak signals of (finding, actor, first ms, last ms) members, one per (name, actor, value)."""
    folded: dict[tuple[str, str, str], WeakSignal] = {}

    def add(name: str, value: str, actor: str, first: int, last: int, fid: str, ips: list[str], key: str) -> None:
        signal = folded.get((name, actor, value))
        if signal is None:
            signal = folded[(name, actor, value)] = WeakSignal(name, value, actor, first, last, indicator=key)
        signal.first_ms = min(signal.first_ms, first)
        signal.last_ms = max(signal.last_ms, last)
        if fid not in signal.finding_ids:
            signal.finding_ids.append(fid)
        for ip in ips:
            if ip and ip not in signal.addresses:
                signal.addresses.append(ip)

    for finding, actor, first, last in members:
        call = ((finding.get("service") or {}).get("action") or {}).get("kubernetesApiCallAction") or {}
        ips = list(call.get("sourceIPs") or [])
        for feature, value in unusual_user_behaviour(finding).items():
            name = _FEATURES.get(feature)
            if name is not None:
                key = {NEW_ASN: "UNUSUAL_ASN_FOR_USER", NEW_NETWORK: "SUSPICIOUS_NETWORK"}.get(
                    name, "SUSPICIOUS_USER_AGENT")
                add(name, value, actor, first, last, finding["id"], ips, key)
        for address, key in flagged_addresses(finding):
            add(FLAGGED_IP, address, actor, first, last, finding["id"], [address], key)
    return sorted(folded.values(), key=lambda s: (s.first_ms, s.name, s.value))
