"""<Tactic>:Kubernetes/MaliciousIPCaller, MaliciousIPCaller.Custom and TorIPCaller.

The 15 caller types, the trusted-list precedence, and which address of ``sourceIPs`` counts when a client
writes ``X-Forwarded-For`` entries in front of its own address.
"""

from __future__ import annotations

import orjson
import pytest
from conftest import build_event

from kubeguard.audit.decode import decode_bytes
from kubeguard.config import Settings
from kubeguard.detectors.callers.anonymous import SuccessfulAnonymousAccess
from kubeguard.detectors.callers.threat_intel import ThreatIntelCaller
from kubeguard.detectors.state import MemoryState
from kubeguard.intel.index import IntelIndex, ThreatList
from kubeguard.intel.ipset import IPSet
from kubeguard.pipeline import FindingSet, Pipeline

CUSTOM_IP = "198.51.100.23"
FEED_IP = "203.0.113.77"
TOR_IP = "185.220.101.45"
TRUSTED_IP = "192.0.2.10"
CLEAN_IP = "192.0.2.200"
V6_TOR = "2001:db8:dead::1"

INTEL = IntelIndex(
    lists=[
        ThreatList("acme-blocklist", "custom", IPSet.of([CUSTOM_IP])),
        ThreatList("firehol-level1", "malicious", IPSet.of(["203.0.113.0/24"]), ("FireHOL level1",)),
        ThreatList("tor-exits", "tor", IPSet.of([TOR_IP, "2001:db8:dead::/48"]), ("Tor exit node",)),
    ],
    trusted=[ThreatList("office", "trusted", IPSet.of([TRUSTED_IP]))],
)

#: One call per tactic, as DESIGN.md's table classifies them.
CALLS = {
    "CredentialAccess": ("list", "/api/v1/namespaces/prod/secrets", "secrets", ""),
    "DefenseEvasion": ("delete", "/api/v1/namespaces/prod/events/x", "events", ""),
    "Persistence": ("create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebindings", ""),
    "Impact": ("delete", "/api/v1/namespaces/prod/pods/web-1", "pods", ""),
    "Discovery": ("list", "/api/v1/namespaces/prod/pods", "pods", ""),
}
VARIANTS = {CUSTOM_IP: "MaliciousIPCaller.Custom", FEED_IP: "MaliciousIPCaller", TOR_IP: "TorIPCaller"}
MEDIUM_TACTICS = {"Discovery", "Persistence"}


def call(verb, uri, resource, *, ips, user="alice", groups=("system:authenticated",), code=200, audit_id=None):
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": audit_id or f"{verb}{uri}{ips}{user}",
        "stage": "ResponseComplete", "verb": verb, "requestURI": uri,
        "user": {"username": user, "groups": list(groups)}, "sourceIPs": list(ips),
        "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        "objectRef": {"resource": resource, "namespace": "prod", "apiVersion": "v1"},
        "responseStatus": {"code": code}, "stageTimestamp": "2024-05-14T09:31:07.412345Z",
    }


def scan(records, detectors=None):
    pipeline = Pipeline(
        Settings(), MemoryState(), detectors=detectors or [ThreatIntelCaller()], intel=INTEL
    )
    data = b"\n".join(orjson.dumps(r) for r in records)
    findings = FindingSet()
    for event in decode_bytes(data, cluster="prod").events:
        for finding in pipeline.process_event(event):
            findings.add(finding)
    return findings.values()


@pytest.mark.parametrize("tactic", sorted(CALLS))
@pytest.mark.parametrize("ip", sorted(VARIANTS))
def test_each_tactic_from_each_kind_of_listed_address_raises_its_own_type(tactic, ip):
    verb, uri, resource, _ = CALLS[tactic]
    [finding] = scan([call(verb, uri, resource, ips=[ip])])
    assert finding["type"] == f"{tactic}:Kubernetes/{VARIANTS[ip]}"
    assert finding["severity"] == (5.0 if tactic in MEDIUM_TACTICS else 8.0)
    api = finding["service"]["action"]["kubernetesApiCallAction"]
    assert api["remoteIpDetails"]["ipAddressV4"] == ip
    assert api["verb"] == verb and api["sourceIPs"] == [ip]
    [evidence] = finding["service"]["evidence"]["threatIntelligenceDetails"]
    assert evidence["threatListName"] == {CUSTOM_IP: "acme-blocklist", FEED_IP: "firehol-level1",
                                          TOR_IP: "tor-exits"}[ip]
    info = orjson.loads(finding["service"]["additionalInfo"]["value"])
    assert info["threatListName"] == evidence["threatListName"]
    assert finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"] == "alice"


def test_fifteen_distinct_types_cover_the_matrix():
    records = [
        call(*CALLS[tactic][:3], ips=[ip]) for tactic in CALLS for ip in VARIANTS
    ]
    types = {f["type"] for f in scan(records)}
    assert len(types) == 15
    assert types == set(ThreatIntelCaller.finding_types)


def test_a_denied_call_from_a_tor_exit_still_raises():
    [finding] = scan([call("list", "/api/v1/secrets", "secrets", ips=[TOR_IP], code=403)])
    assert finding["type"] == "CredentialAccess:Kubernetes/TorIPCaller"
    assert finding["service"]["action"]["kubernetesApiCallAction"]["statusCode"] == 403


def test_a_clean_address_raises_nothing():
    assert scan([call("list", "/api/v1/secrets", "secrets", ips=[CLEAN_IP])]) == []


def test_trusted_peer_is_not_framed_by_a_forged_tor_entry_in_front():
    # curl -H 'X-Forwarded-For: <tor exit>' from the trusted office network
    assert scan([call("list", "/api/v1/pods", "pods", ips=[TOR_IP, TRUSTED_IP])]) == []


def test_address_on_both_a_threat_list_and_a_trusted_list_raises_nothing():
    both = IntelIndex(
        lists=[ThreatList("acme-blocklist", "custom", IPSet.of([TRUSTED_IP]))],
        trusted=[ThreatList("office", "trusted", IPSet.of([TRUSTED_IP]))],
    )
    pipeline = Pipeline(Settings(), MemoryState(), detectors=[ThreatIntelCaller()], intel=both)
    assert pipeline.process_event(build_event(call("list", "/api/v1/pods", "pods", ips=[TRUSTED_IP]))) == []


def test_forged_trusted_entry_does_not_hide_a_malicious_peer():
    [finding] = scan([call("list", "/api/v1/pods", "pods", ips=[TRUSTED_IP, CUSTOM_IP])])
    assert finding["type"] == "Discovery:Kubernetes/MaliciousIPCaller.Custom"
    api = finding["service"]["action"]["kubernetesApiCallAction"]
    assert api["remoteIpDetails"]["ipAddressV4"] == CUSTOM_IP
    assert api["sourceIPs"] == [TRUSTED_IP, CUSTOM_IP]


def test_listed_forwarded_client_behind_an_unlisted_peer_is_reported_with_its_own_address():
    [finding] = scan([call("get", "/api/v1/namespaces/prod/pods/a", "pods", ips=[FEED_IP, CLEAN_IP])])
    assert finding["type"] == "Discovery:Kubernetes/MaliciousIPCaller"
    assert finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"]["ipAddressV4"] == FEED_IP


def test_peer_match_is_preferred_over_a_forwarded_match_of_the_same_kind():
    other_feed_ip = "203.0.113.5"
    [finding] = scan([call("get", "/api/v1/pods", "pods", ips=[other_feed_ip, FEED_IP])])
    assert finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"]["ipAddressV4"] == FEED_IP


def test_ipv6_tor_exit_is_matched_and_described_as_v6():
    [finding] = scan([call("list", "/api/v1/pods", "pods", ips=[V6_TOR])])
    assert finding["type"] == "Discovery:Kubernetes/TorIPCaller"
    assert finding["service"]["action"]["kubernetesApiCallAction"]["remoteIpDetails"]["ipAddressV6"] == V6_TOR


def test_anonymous_caller_from_tor_gets_the_anonymous_family_only():
    anonymous = call("list", "/api/v1/namespaces/prod/pods", "pods", ips=[TOR_IP], user="system:anonymous",
                     groups=("system:unauthenticated",))
    types = {f["type"] for f in scan([anonymous], [ThreatIntelCaller(), SuccessfulAnonymousAccess()])}
    assert types == {"Discovery:Kubernetes/SuccessfulAnonymousAccess"}


def test_repeated_calls_from_one_address_aggregate_into_one_finding():
    records = [
        call("list", "/api/v1/namespaces/prod/secrets", "secrets", ips=[CUSTOM_IP], audit_id=f"id-{n}")
        for n in range(3)
    ]
    [finding] = scan(records)
    assert finding["service"]["count"] == 3


def test_no_intel_configured_means_no_caller_findings():
    pipeline = Pipeline(Settings(), MemoryState(), detectors=[ThreatIntelCaller()], intel=None)
    assert pipeline.process_event(build_event(call("list", "/api/v1/pods", "pods", ips=[TOR_IP]))) == []
