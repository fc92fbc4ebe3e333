"""Investigations of a Kubernetes subject: Detective's indicators, computed from findings.

Given the findings of a cluster, a subject (its username) and a scope time, :func:`investigate` returns
the indicators Detective reports, in Detective's wire shape (``Indicator``), with a severity:

- ``RELATED_FINDING``: every finding of the subject (its actor) active in the scope, sequences included;
- ``TTP_OBSERVED``: per finding, its ATT&CK tactic and technique, the API call, the address, and whether
  the calls succeeded;
- ``FLAGGED_IP_ADDRESS``: addresses the subject called from that matched a threat list;
- ``NEW_ASO`` / ``NEW_USER_AGENT``: an ASN organisation or client the subject's own behaviour profile had
  not seen (the anomaly evidence of its findings; ``IsNewForEntireAccount`` when the cluster's profile had
  not either);
- ``NEW_GEOLOCATION``: the country of such a new address, when it is none of the countries of the
  networks in the subject's profile (resolved with :mod:`kubeguard.intel.geo`);
- ``IMPOSSIBLE_TRAVEL``: two addresses of the subject in different countries used within one hour, when
  the geo data has coordinates for both (the bundled database has none, a MaxMind City database does);
- ``RELATED_FINDING_GROUP``: the finding groups (:mod:`kubeguard.correlate.groups`) the subject is in.

Severity: CRITICAL with an attack sequence, HIGH with a High finding or a flagged address, MEDIUM with
any finding, LOW with only new-behaviour indicators, else INFORMATIONAL.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubeguard.correlate import tactics
from kubeguard.correlate.entities import api_call_of, cluster_of, user_of
from kubeguard.correlate.groups import finding_groups
from kubeguard.correlate.sequences import is_sequence, member_of
from kubeguard.correlate.signals import flagged_addresses

SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
IpDescriber = Callable[[str], dict[str, Any]]


@dataclass(slots=True)
class Investigation:
    severity: str
    indicators: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""


def _role_session(arn: str) -> tuple[str, str] | None:
    """(role ARN EKS logs as the username, session name) for an STS assumed-role ARN from EKS user extras."""
    prefix, _, rest = arn.partition(":assumed-role/")
    if not rest or not prefix.startswith("arn:") or ":sts::" not in prefix:
        return None
    role, _, session = rest.partition("/")
    account_prefix = prefix.replace(":sts::", ":iam::", 1)
    return f"{account_prefix}:role/{role}", session


def _involves(finding: dict[str, Any], username: str) -> bool:
    user = user_of(finding)
    if user.get("username") == username:
        return True
    session = _role_session(username)
    if session is not None and user.get("username") == session[0] and session[1] in (user.get("sessionName") or []):
        return True
    if is_sequence(finding):
        actors = (((finding.get("service") or {}).get("detection") or {}).get("sequence") or {}).get("actors") or []
        return any((a.get("user") or {}).get("name") == username for a in actors)
    return False


def _in_scope(finding: dict[str, Any], start_ms: int, end_ms: int) -> bool:
    member = member_of(finding)
    return member.first_ms < end_ms and member.last_ms >= start_ms


def _first_ip(finding: dict[str, Any]) -> str:
    ips = api_call_of(finding).get("sourceIPs") or []
    return ips[0] if ips else ""


def _unusual(finding: dict[str, Any], scope: str) -> dict[str, str]:
    anomaly = ((finding.get("service") or {}).get("detection") or {}).get("anomaly") or {}
    behaviour = ((anomaly.get("unusual") or {}).get("behavior") or {}).get(scope) or {}
    return {feature: ((seen.get("observations") or {}).get("text") or [""])[0]
            for feature, seen in behaviour.items() if seen.get("profileSubtype") in ("UNSEEN", "RARE")}


def _profile_networks(finding: dict[str, Any], exclude: set[str]) -> list[str]:
    anomaly = ((finding.get("service") or {}).get("detection") or {}).get("anomaly") or {}
    objects = ((anomaly.get("profiles") or {}).get("USER") or {}).get("network") or []
    return [t for o in objects for t in (o.get("observations") or {}).get("text") or [] if t not in exclude]


def _country(describe: IpDescriber, ip: str) -> tuple[str, dict[str, Any]]:
    details = describe(ip)
    return (details.get("country") or {}).get("countryName", "UNKNOWN"), details


def _network_address(network: str) -> str | None:
    try:
        parsed = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return None
    return str(next(iter(parsed.hosts()), parsed.network_address))


def investigate(
    findings: Iterable[dict[str, Any]],
    cluster: str | None,
    username: str,
    start_ms: int,
    end_ms: int,
    describe: IpDescriber,
) -> Investigation:
    """Indicators for ``username`` in ``cluster`` between ``start_ms`` and ``end_ms``."""
    everything = [f for f in findings if cluster is None or cluster_of(f) == cluster]
    mine = [f for f in everything if _involves(f, username) and _in_scope(f, start_ms, end_ms)]
    mine.sort(key=lambda f: (member_of(f).first_ms, f["id"]))
    indicators: list[dict[str, Any]] = []
    for finding in mine:
        indicators.append({"IndicatorType": "RELATED_FINDING", "IndicatorDetail": {"RelatedFindingDetail": {
            "Arn": finding["arn"], "Type": finding["type"], **_ip(_first_ip(finding))}}})
    indicators.extend(_ttps(mine))
    indicators.extend(_flagged(mine))
    indicators.extend(_new_behaviour(mine, describe))
    indicators.extend(_impossible_travel(mine, describe))
    groups = [g for g in finding_groups(f for f in everything if _in_scope(f, start_ms, end_ms))
              if {f["id"] for f in mine} & set(g["findingIds"])]
    for group in groups:
        indicators.append({"IndicatorType": "RELATED_FINDING_GROUP",
                           "IndicatorDetail": {"RelatedFindingGroupDetail": {"Id": group["id"]}}})
    severity = _severity(mine, indicators)
    kinds = sorted({i["IndicatorType"] for i in indicators})
    summary = (f"{username} in {cluster or 'every cluster'}: {len(mine)} related findings"
               + (f"; indicators {', '.join(kinds)}" if kinds else "; nothing suspicious in scope") + ".")
    return Investigation(severity, indicators, summary)


def _ip(ip: str) -> dict[str, str]:
    return {"IpAddress": ip} if ip else {}


def _ttps(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for finding in findings:
        if is_sequence(finding):
            continue
        call = api_call_of(finding)
        count = int((finding.get("service") or {}).get("count", 1))
        failed = int(call.get("statusCode", 200)) >= 400
        api = f"{call.get('verb', '')} {call.get('resource') or call.get('requestUri', '')}".strip()
        if call.get("subresource"):
            api += f"/{call['subresource']}"
        detail: dict[str, Any] = {
            "Tactic": tactics.tactic_name(finding["type"]) or "Unknown",
            "Technique": tactics.technique_of(finding["type"]) or "Unknown",
            "Procedure": finding["type"],
            "APIName": api,
            "APISuccessCount": 0 if failed else count,
            "APIFailureCount": count if failed else 0,
            **_ip(_first_ip(finding)),
        }
        found.append({"IndicatorType": "TTP_OBSERVED", "IndicatorDetail": {"TTPsObservedDetail": detail}})
    return found


def _flagged(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[str] = []
    for finding in findings:
        for address, _key in flagged_addresses(finding):
            if address and address not in seen:
                seen.append(address)
    return [{"IndicatorType": "FLAGGED_IP_ADDRESS", "IndicatorDetail": {"FlaggedIpAddressDetail": {
        "IpAddress": ip, "Reason": "AWS_THREAT_INTELLIGENCE"}}} for ip in seen]


def _new_behaviour(findings: list[dict[str, Any]], describe: IpDescriber) -> list[dict[str, Any]]:
    asos: dict[str, bool] = {}
    agents: dict[str, bool] = {}
    places: dict[str, tuple[str, bool]] = {}
    for finding in findings:
        mine, cluster_wide = _unusual(finding, "USER"), _unusual(finding, "CLUSTER")
        call = api_call_of(finding)
        if "asnOrg" in mine:
            asos[mine["asnOrg"]] = asos.get(mine["asnOrg"], False) or "asnOrg" in cluster_wide
        if "userAgent" in mine:
            agent = call.get("userAgent") or mine["userAgent"]
            agents[agent] = agents.get(agent, False) or "userAgent" in cluster_wide
        if "network" in mine or "asnOrg" in mine:
            ip = _first_ip(finding)
            country, _ = _country(describe, ip) if ip else ("UNKNOWN", {})
            known = set()
            for network in _profile_networks(finding, {mine.get("network", "")}):
                address = _network_address(network)
                if address:
                    known.add(_country(describe, address)[0])
            if country != "UNKNOWN" and country not in known and ip not in places:
                places[ip] = (country, "network" in cluster_wide)
    found = [{"IndicatorType": "NEW_ASO", "IndicatorDetail": {"NewAsoDetail": {
        "Aso": aso, "IsNewForEntireAccount": new_for_all}}} for aso, new_for_all in asos.items()]
    found += [{"IndicatorType": "NEW_USER_AGENT", "IndicatorDetail": {"NewUserAgentDetail": {
        "UserAgent": agent, "IsNewForEntireAccount": new_for_all}}} for agent, new_for_all in agents.items()]
    found += [{"IndicatorType": "NEW_GEOLOCATION", "IndicatorDetail": {"NewGeolocationDetail": {
        "Location": country, "IpAddress": ip, "IsNewForEntireAccount": new_for_all}}}
        for ip, (country, new_for_all) in places.items()]
    return found


def _impossible_travel(findings: list[dict[str, Any]], describe: IpDescriber) -> list[dict[str, Any]]:
    """Consecutive addresses in different countries, closer in time than travel between them allows."""
    points = []
    for finding in findings:
        ip = _first_ip(finding)
        if not ip:
            continue
        country, details = _country(describe, ip)
        location = details.get("geoLocation") or {}
        lat, lon = float(location.get("lat", 0.0)), float(location.get("lon", 0.0))
        if country != "UNKNOWN" and (lat, lon) != (0.0, 0.0):
            points.append((member_of(finding).first_ms, ip, country, lat, lon))
    found = []
    for (t1, ip1, c1, la1, lo1), (t2, ip2, c2, la2, lo2) in zip(points, points[1:], strict=False):
        hours = max((t2 - t1) / 3_600_000, 1 / 60)
        if c1 != c2 and _km(la1, lo1, la2, lo2) / hours > 1000:
            found.append({"IndicatorType": "IMPOSSIBLE_TRAVEL", "IndicatorDetail": {"ImpossibleTravelDetail": {
                "StartingIpAddress": ip1, "EndingIpAddress": ip2, "StartingLocation": c1, "EndingLocation": c2,
                "HourlyTimeDelta": int(hours)}}})
    return found


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371 * 2 * math.asin(min(1.0, math.sqrt(a)))


def _severity(findings: list[dict[str, Any]], indicators: list[dict[str, Any]]) -> str:
    kinds = {i["IndicatorType"] for i in indicators}
    if any(is_sequence(f) for f in findings):
        return "CRITICAL"
    if any(float(f.get("severity", 0)) >= 7 for f in findings) or "FLAGGED_IP_ADDRESS" in kinds:
        return "HIGH"
    if findings:
        return "MEDIUM"
    if kinds:
        return "LOW"
    return "INFORMATIONAL"
