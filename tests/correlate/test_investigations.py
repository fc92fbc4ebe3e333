"""Investigations as a function of findings: who is the subject, and each indicator's rule."""

from __future__ import annotations

import copy

from kubeguard.correlate.investigations import investigate
from kubeguard.correlate.sequences import SEQUENCE_TYPE
from kubeguard.intel.geo import GeoResolver

ROLE = "arn:aws:iam::111122223333:role/data-engineers"
EVERYTHING = (0, 2**62)


def kinds(result) -> set[str]:
    return {i["IndicatorType"] for i in result.indicators}


def as_role_session(findings, session: str) -> list[dict]:
    """The intrusion's findings as EKS logs a mapped role: the role ARN as username, the session beside it."""
    renamed = []
    for finding in findings:
        if finding["type"] == SEQUENCE_TYPE:
            continue
        finding = copy.deepcopy(finding)
        user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]
        user["username"], user["sessionName"] = ROLE, [session]
        renamed.append(finding)
    return renamed


def test_an_assumed_role_session_arn_from_eks_user_extras_finds_that_sessions_findings(intrusion):
    erins = as_role_session(intrusion.findings, "erin")
    findings = erins + as_role_session(intrusion.findings, "frank")[:2]
    session_arn = "arn:aws:sts::111122223333:assumed-role/data-engineers/erin"
    erin = investigate(findings, "default", session_arn, *EVERYTHING, GeoResolver().details)
    related = [i for i in erin.indicators if i["IndicatorType"] == "RELATED_FINDING"]
    assert len(related) == len(erins)
    whole_role = investigate(findings, "default", ROLE, *EVERYTHING, GeoResolver().details)
    assert len([i for i in whole_role.indicators if i["IndicatorType"] == "RELATED_FINDING"]) == len(findings)


def test_a_threat_listed_address_is_a_flagged_ip_and_makes_it_high(intrusion):
    (finding,) = [copy.deepcopy(f) for f in intrusion.findings if f["type"].endswith("RoleCreated")]
    finding["service"]["evidence"] = {"threatIntelligenceDetails": [{"threatListName": "custom",
                                                                     "threatNames": ["listed"]}]}
    finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"] = {"ipAddressV4": "198.51.100.7"}
    result = investigate([finding], "default", "erin@example.com", *EVERYTHING, GeoResolver().details)
    flagged = [i["IndicatorDetail"]["FlaggedIpAddressDetail"] for i in result.indicators
               if i["IndicatorType"] == "FLAGGED_IP_ADDRESS"]
    assert flagged == [{"IpAddress": "198.51.100.7", "Reason": "AWS_THREAT_INTELLIGENCE"}]
    assert result.severity == "HIGH"


def test_two_countries_an_ocean_apart_within_the_hour_is_impossible_travel(intrusion):
    plain = [copy.deepcopy(f) for f in intrusion.findings if f["type"] != SEQUENCE_TYPE][:2]
    plain[0]["service"]["action"]["kubernetesApiCallAction"]["sourceIPs"] = ["192.0.2.1"]
    plain[1]["service"]["action"]["kubernetesApiCallAction"]["sourceIPs"] = ["192.0.2.2"]
    places = {"192.0.2.1": ("France", 48.85, 2.35), "192.0.2.2": ("Japan", 35.68, 139.69)}

    def describe(ip: str) -> dict:
        country, lat, lon = places.get(ip, ("UNKNOWN", 0.0, 0.0))
        return {"country": {"countryName": country}, "geoLocation": {"lat": lat, "lon": lon}}

    result = investigate(plain, "default", "erin@example.com", *EVERYTHING, describe)
    (travel,) = [i["IndicatorDetail"]["ImpossibleTravelDetail"] for i in result.indicators
                 if i["IndicatorType"] == "IMPOSSIBLE_TRAVEL"]
    assert (travel["StartingLocation"], travel["EndingLocation"]) == ("France", "Japan")


def test_someone_else_and_another_cluster_have_nothing(intrusion):
    assert investigate(intrusion.findings, "default", "bob@example.com", *EVERYTHING,
                       GeoResolver().details).severity == "INFORMATIONAL"
    assert investigate(intrusion.findings, "staging", "erin@example.com", *EVERYTHING,
                       GeoResolver().details).indicators == []
