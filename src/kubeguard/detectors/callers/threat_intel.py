"""<Tactic>:Kubernetes/MaliciousIPCaller, MaliciousIPCaller.Custom and TorIPCaller.

An authenticated API call from an address on a threat list, whatever the API server answered: a denied
call from a known-bad address is still an attacker knocking with valid credentials. Unauthenticated
callers get the SuccessfulAnonymousAccess family instead (GuardDuty does the same).

Which address counts. The API server reports ``sourceIPs`` as the ``X-Forwarded-For`` entries, then
``X-Real-Ip``, then the connection's peer, last. It does not check those headers: any client may write
any address in front of its own. So:

* the **peer** (the last address) is the one fact; if it is on a trusted list, the request is trusted and
  nothing in front of it raises a finding (a trusted admin network cannot be framed by a forged header);
* otherwise **every** address is checked, the peer first, and an address that is itself trusted is
  skipped (a forged trusted entry in front of a malicious peer hides nothing);
* the finding reports the matched address in ``remoteIpDetails``; ``sourceIPs`` lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubeguard.audit.event import AuditEvent
from kubeguard.detectors.base import ANY, WITH_INTEL, Detection, DetectionContext, is_anonymous
from kubeguard.detectors.common import api_call, make_detection, who
from kubeguard.detectors.effect import EVERY_OUTCOME
from kubeguard.detectors.tactics import classify
from kubeguard.findings.types import TACTICS

#: Threat-list kind (``kubeguard.intel.index.KINDS``) → the GuardDuty variant it raises.
VARIANTS = {"custom": "MaliciousIPCaller.Custom", "malicious": "MaliciousIPCaller", "tor": "TorIPCaller"}
_PHRASES = {
    "custom": "which is on the custom threat list",
    "malicious": "which is on the threat list",
    "tor": "a Tor exit node listed in",
}


#: Distinct ``sourceIPs`` tuples whose matches are remembered; clusters see few distinct callers.
MATCH_CACHE_SIZE = 65_536


def addresses_to_check(source_ips: Sequence[str], intel: Any) -> list[str]:
    """The addresses whose listing matters, peer first; empty when the peer is trusted."""
    if not source_ips or intel.is_trusted(source_ips[-1]):
        return []
    ordered = [source_ips[-1], *reversed(source_ips[:-1])]
    unique = list(dict.fromkeys(ordered))
    return [ip for ip in unique if not intel.is_trusted(ip)]


def match_by_kind(source_ips: Sequence[str], intel: Any) -> dict[str, list[Any]]:
    """For each list kind, the matches of the first address it holds (the peer when it matches)."""
    found: dict[str, list[Any]] = {}
    for ip in addresses_to_check(source_ips, intel):
        for match in intel.match(ip):
            matches = found.setdefault(match.kind, [])
            if not matches or matches[0].ip == ip:
                matches.append(match)
    return found


class ThreatIntelCaller:
    name = "threat-intel-caller"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    only_for = WITH_INTEL
    finding_types = tuple(f"{tactic}:Kubernetes/{variant}" for variant in VARIANTS.values() for tactic in TACTICS)
    wants = ((ANY, ANY),)
    #: A call from a listed address is the finding, whatever the API server answered (DESIGN.md).
    outcomes = EVERY_OUTCOME

    def __init__(self) -> None:
        self._cache: dict[str | tuple[str, ...], dict[str, list[Any]]] = {}
        self._cached_for: Any = None

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Sequence[Detection]:
        """Runs on every event, so it returns a plain tuple rather than starting a generator."""
        intel = ctx.intel
        source_ips = event.sourceIPs
        if intel is None or not source_ips:
            return ()
        if intel is not self._cached_for:
            self._cache, self._cached_for = {}, intel
        key = source_ips[0] if len(source_ips) == 1 else tuple(source_ips)
        matches_by_kind = self._cache.get(key)
        if matches_by_kind is None:
            matches_by_kind = self._remember(key, source_ips, intel)
        if not matches_by_kind or is_anonymous(event):
            return ()
        tactic = classify(event)
        if tactic is None:
            return ()
        return tuple(self._detection(event, tactic, kind, matches) for kind, matches in matches_by_kind.items())

    def _remember(self, key: str | tuple[str, ...], source_ips: list[str], intel: Any) -> dict[str, list[Any]]:
        """Matches by list kind for new sourceIPs, kept until the intel is reloaded or the cache fills."""
        if len(self._cache) >= MATCH_CACHE_SIZE:
            self._cache = {}
        found = self._cache[key] = match_by_kind(source_ips, intel)
        return found

    @staticmethod
    def _detection(event: AuditEvent, tactic: str, kind: str, matches: list[Any]) -> Detection:
        ip = matches[0].ip
        names = [m.list_name for m in matches]
        evidence = [
            {"threatListName": m.list_name, "threatNames": list(m.threat_names)}
            | ({"threatFileSha256": m.file_sha256} if m.file_sha256 else {})
            for m in matches
        ]
        info: dict[str, Any] = {"threatListName": names[0]}
        threat_names = [name for m in matches for name in m.threat_names]
        if threat_names:
            info["threatName"] = threat_names[0]
        return make_detection(
            f"{tactic}:Kubernetes/{VARIANTS[kind]}",
            event,
            key=ip,
            description=(
                f"Kubernetes API {api_call(event)} was invoked on cluster {event.cluster} by {who(event)} from "
                f"IP {ip}, {_PHRASES[kind]} {', '.join(names)}."
            ),
            remote_ip=ip,
            threat_intel=evidence,
            additional_info=info,
        )
