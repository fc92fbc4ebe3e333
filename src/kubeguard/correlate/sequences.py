"""``AttackSequence:EKS/CompromisedCluster``: one Critical finding for a chain of related findings.

The stage is a pure function of findings — :func:`correlate` takes every finding of interest (those
already known and those just raised, plus any attack sequence raised before) and returns the sequences
to store and the members that belong to them — so ``scan``, ``serve`` and workers call the same code on
the same findings and get the same answer, whatever the batching.

The rule, per cluster (archived findings and sequences themselves are left out, as GuardDuty does):

1. **Link.** Two findings are related when they share an actor (Kubernetes subject and, on EKS, its
   session name), a workload, or a public source address, and the later one began within
   :data:`WINDOW_MS` (24 h) of the end of the other. Linking is transitive; each connected set is a
   candidate chain.
2. **Span.** A chain is an attack sequence when it has at least :data:`MIN_FINDINGS` findings, covers at
   least :data:`MIN_TACTICS` ATT&CK tactics (a weak ACCESS signal counts as Initial Access), holds both a
   RECON finding (credential access or discovery) and an ACTION finding (execution, privilege escalation,
   persistence, defence evasion, impact) with the reconnaissance starting no later than the action ends,
   and is corroborated: it has an ACCESS-stage signal (a new ASN, network or client for the subject, a
   flagged or anonymous caller, an exposed dashboard) or a High-severity member.
3. **Identity.** The sequence id is derived from the cluster, the chain's main actor (the anchor) and its
   earliest member and when that began, so the same chain gets the same id in every mode; when a chain
   overlaps a sequence raised before, it updates that sequence (its id, creation time and earlier signals
   are kept).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubeguard.correlate import tactics
from kubeguard.correlate.entities import (
    WORKLOAD_TYPES,
    Entities,
    api_call_of,
    cluster_of,
    entities_of,
    subject_arn,
    workload_uid,
)
from kubeguard.correlate.signals import FLAGGED_IP, WeakSignal, weak_signals
from kubeguard.findings.criteria import epoch_ms

SEQUENCE_TYPE = "AttackSequence:EKS/CompromisedCluster"
SEVERITY_CRITICAL = 9.0
WINDOW_MS = 24 * 3600 * 1000
MIN_FINDINGS = 3
MIN_TACTICS = 3
HIGH_SEVERITY = 7.0
#: GuardDuty's model allows at most 100 signals in a sequence; the earliest are kept.
MAX_SIGNALS = 100
TITLE = "Potential Kubernetes cluster compromise indicated by a sequence of related findings."

#: API calls worth naming as HIGH_RISK_API in the sequence's indicators.
_HIGH_RISK_APIS = frozenset({
    "list secrets", "get secrets", "watch secrets", "create pods/exec", "create pods/attach",
    "create clusterrolebindings", "create rolebindings", "create clusterroles", "create roles",
    "create selfsubjectaccessreviews", "create selfsubjectrulesreviews", "create serviceaccounts/token",
    "patch clusterrolebindings", "update clusterrolebindings", "create daemonsets", "create deployments",
    "create pods", "delete events", "deletecollection events",
})
_SCRIPT_AGENTS = ("python-requests/", "curl/", "Go-http-client/", "Wget/", "aiohttp/", "okhttp/")


@dataclass(slots=True)
class Member:
    finding: dict[str, Any]
    entities: Entities
    first_ms: int
    last_ms: int

    @property
    def id(self) -> str:
        return str(self.finding["id"])

    @property
    def type(self) -> str:
        return str(self.finding["type"])


@dataclass(slots=True)
class Correlation:
    """What correlation decided: the sequences to store, and for each member finding its sequence's ARN."""

    sequences: list[dict[str, Any]] = field(default_factory=list)
    memberships: dict[str, str] = field(default_factory=dict)


def is_sequence(finding: dict[str, Any]) -> bool:
    return finding.get("type") == SEQUENCE_TYPE


def is_archived(finding: dict[str, Any]) -> bool:
    return bool((finding.get("service") or {}).get("archived"))


def _ms(text: Any) -> int:
    value = epoch_ms(text) if isinstance(text, str) else None
    return value if isinstance(value, int) else 0


def member_of(finding: dict[str, Any]) -> Member:
    service = finding.get("service") or {}
    first = _ms(service.get("eventFirstSeen"))
    last = _ms(service.get("eventLastSeen")) or first
    return Member(finding, entities_of(finding), first, max(first, last))


def correlate(findings: Iterable[dict[str, Any]]) -> Correlation:
    """Attack sequences among ``findings`` (sequences raised before may be among them, to be updated)."""
    by_cluster: dict[str, list[Member]] = defaultdict(list)
    earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    archived: set[str] = set()
    for finding in findings:
        if is_sequence(finding):
            if not is_archived(finding):
                earlier[cluster_of(finding)].append(finding)
        elif is_archived(finding):
            archived.add(finding["id"])
        else:
            member = member_of(finding)
            by_cluster[member.entities.cluster].append(member)
    result = Correlation()
    for cluster in sorted(by_cluster):
        for chain in link(by_cluster[cluster]):
            signals = weak_signals([(m.finding, m.entities.actor, m.first_ms, m.last_ms) for m in chain])
            if not qualifies(chain, signals):
                continue
            previous = _overlapping(earlier[cluster], chain)
            sequence = build_sequence(chain, signals, previous, archived)
            result.sequences.append(sequence)
            for member in chain:
                result.memberships[member.id] = sequence["arn"]
    return result


# -- step 1: link ---------------------------------------------------------------------------------------

def link(members: list[Member], window_ms: int = WINDOW_MS) -> list[list[Member]]:
    """Connected chains of members (each sorted by first seen), linked by shared entities within the window."""
    parent = list(range(len(members)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    by_key: dict[str, list[int]] = defaultdict(list)
    for index, member in enumerate(members):
        for key in member.entities.link_keys:
            by_key[key].append(index)
    for indexes in by_key.values():
        indexes.sort(key=lambda i: (members[i].first_ms, members[i].id))
        reach = members[indexes[0]].last_ms
        for previous, current in zip(indexes, indexes[1:], strict=False):
            if members[current].first_ms - reach <= window_ms:
                parent[root(current)] = root(previous)
                reach = max(reach, members[current].last_ms)
            else:
                reach = members[current].last_ms
    chains: dict[int, list[Member]] = defaultdict(list)
    for index, member in enumerate(members):
        chains[root(index)].append(member)
    return [sorted(chain, key=lambda m: (m.first_ms, m.id)) for chain in chains.values()]


# -- step 2: span ---------------------------------------------------------------------------------------

def qualifies(chain: list[Member], signals: list[WeakSignal]) -> bool:
    """Whether ``chain`` spans the stages of an intrusion (module docstring, step 2)."""
    if len({m.id for m in chain}) < MIN_FINDINGS:
        return False
    recon = [m for m in chain if tactics.RECON in tactics.stages_of(m.type)]
    action = [m for m in chain if tactics.ACTION in tactics.stages_of(m.type)]
    if not recon or not action:
        return False
    if min(m.first_ms for m in recon) > max(m.last_ms for m in action):
        return False
    access = bool(signals) or any(tactics.ACCESS in tactics.stages_of(m.type) for m in chain)
    names = {tactics.tactic_name(m.type) for m in chain} - {None}
    if access:
        names.add("Initial Access")
    if len(names) < MIN_TACTICS:
        return False
    return access or any(float(m.finding.get("severity", 0)) >= HIGH_SEVERITY for m in chain)


# -- step 3: the finding ----------------------------------------------------------------------------------

def _overlapping(sequences: list[dict[str, Any]], chain: list[Member]) -> dict[str, Any] | None:
    ids = {m.id for m in chain}
    matches = [s for s in sequences if ids & member_ids(s)]
    return min(matches, key=lambda s: (s.get("createdAt", ""), s["id"])) if matches else None


def member_ids(sequence: dict[str, Any]) -> set[str]:
    """Ids of the member findings a stored sequence names in its FINDING signals."""
    signals = (((sequence.get("service") or {}).get("detection") or {}).get("sequence") or {}).get("signals") or []
    return {s["uid"].rpartition("/")[2] for s in signals if s.get("type") == "FINDING" and s.get("uid")}


def anchor_actor(chain: list[Member]) -> Member:
    """The member whose actor is the chain's main actor (most findings; earliest on a tie)."""
    counts = Counter(m.entities.actor for m in chain)
    best = max(counts.values())
    return next(m for m in chain if counts[m.entities.actor] == best)


def sequence_id(cluster: str, actor: str, earliest_member_id: str, earliest_ms: int) -> str:
    """The anchor: cluster, main actor, and the earliest member with when it began (so the same person's
    next intrusion, weeks later, is a new sequence even when its first finding aggregates into an old one)."""
    material = "\x1f".join((cluster, SEQUENCE_TYPE, actor, earliest_member_id, str(earliest_ms))).encode()
    return hashlib.sha256(material).hexdigest()[:32]


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def build_sequence(
    chain: list[Member],
    signals: list[WeakSignal],
    previous: dict[str, Any] | None = None,
    archived: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The sequence finding for ``chain``, updating ``previous`` (same id) when there is one."""
    anchor = anchor_actor(chain)
    first = chain[0].finding
    cluster = anchor.entities.cluster
    sid = previous["id"] if previous else sequence_id(cluster, anchor.entities.actor, chain[0].id,
                                                      chain[0].first_ms)
    arn = first["arn"].rpartition("/finding/")[0] + f"/finding/{sid}"
    body = _sequence_body(chain, signals, cluster)
    if previous is not None:
        body["signals"] = _carry_over(previous, body["signals"], archived)
    first_ms = min(m.first_ms for m in chain)
    last_ms = max(m.last_ms for m in chain)
    updated = max(str(m.finding.get("updatedAt", "")) for m in chain)
    created = min(str(m.finding.get("createdAt", "")) for m in chain)
    if previous is not None:
        created = previous.get("createdAt", created)
    if previous is not None:
        prior = previous.get("service") or {}
        first_seen = min(_iso(first_ms), prior.get("eventFirstSeen") or _iso(first_ms))
        updated = max(updated, str(previous.get("updatedAt", "")))
    else:
        first_seen = _iso(first_ms)
    body["uid"] = sid
    body["description"] = _description(chain, signals, anchor)[:4096]
    service: dict[str, Any] = {
        "serviceName": "guardduty",
        "detectorId": (first.get("service") or {}).get("detectorId", ""),
        "featureName": "EKS_AUDIT_LOGS",
        "resourceRole": "TARGET",
        "archived": False,
        "count": len(body["signals"]),
        "eventFirstSeen": first_seen,
        "eventLastSeen": _iso(last_ms),
        "detection": {"sequence": body},
    }
    return {
        "schemaVersion": first.get("schemaVersion", "2.0"),
        "accountId": first.get("accountId", ""),
        "region": first.get("region", ""),
        "partition": first.get("partition", "aws"),
        "id": sid,
        "arn": arn,
        "type": SEQUENCE_TYPE,
        "title": TITLE,
        "description": _summary(chain, anchor),
        "severity": SEVERITY_CRITICAL,
        "confidence": 0.0,
        "createdAt": created,
        "updatedAt": updated,
        "resource": {
            "resourceType": "EKSCluster",
            "eksClusterDetails": (first.get("resource") or {}).get("eksClusterDetails") or {"name": cluster},
            "kubernetesDetails": {
                "kubernetesUserDetails": (anchor.finding.get("resource") or {})
                .get("kubernetesDetails", {})
                .get("kubernetesUserDetails", {})
            },
        },
        "service": service,
    }


def _carry_over(previous: dict[str, Any], signals: list[dict[str, Any]], archived: set[str] | frozenset[str]) -> list:
    """Signals of the previous version that this chain no longer shows (out of the loaded window), kept."""
    prior = ((previous.get("service") or {}).get("detection") or {}).get("sequence") or {}
    present = {s["uid"] for s in signals}
    kept = [
        s for s in prior.get("signals") or []
        if s["uid"] not in present and s["uid"].rpartition("/")[2] not in archived
    ]
    merged = sorted([*kept, *signals], key=lambda s: (s.get("firstSeenAt", 0), s["uid"]))
    return merged[:MAX_SIGNALS]


def _sequence_body(chain: list[Member], signals: list[WeakSignal], cluster: str) -> dict[str, Any]:
    actors: dict[str, dict[str, Any]] = {}
    resources: dict[str, dict[str, Any]] = {}
    endpoints: dict[str, dict[str, Any]] = {}
    cluster_arn = ((chain[0].finding.get("resource") or {}).get("eksClusterDetails") or {}).get("arn") or cluster
    resources[cluster_arn] = {"uid": cluster_arn, "name": cluster, "resourceType": "EKS_CLUSTER"}
    wire_signals = []
    for member in chain:
        actor_id = _actor(member, actors)
        resource_ids = [cluster_arn, *_workloads(member, resources)]
        endpoint_ids = _endpoints(member, endpoints)
        wire_signals.append(_finding_signal(member, actor_id, resource_ids, endpoint_ids))
    actor_by_name = {m.entities.actor: _actor(m, actors) for m in chain}
    for signal in signals:
        wire_signals.append(_weak_signal(signal, actor_by_name.get(signal.actor, ""), cluster_arn))
    wire_signals.sort(key=lambda s: (s["firstSeenAt"], s["uid"]))
    return {
        "uid": "",  # set by the caller from the finding id
        "description": "",
        "actors": list(actors.values()),
        "resources": list(resources.values()),
        "endpoints": list(endpoints.values()),
        "signals": wire_signals[:MAX_SIGNALS],
        "sequenceIndicators": _indicators(chain, signals),
    }


def _actor(member: Member, actors: dict[str, dict[str, Any]]) -> str:
    entities = member.entities
    actor_id = subject_arn(entities.cluster, entities.username)
    if entities.session:
        actor_id = f"{actor_id}#{entities.session}"
    if actor_id not in actors:
        user = (member.finding.get("resource") or {}).get("kubernetesDetails", {}).get("kubernetesUserDetails", {})
        kind = "KubernetesServiceAccount" if entities.username.startswith("system:serviceaccount:") else \
            "KubernetesUser"
        actor: dict[str, Any] = {
            "id": actor_id,
            "user": {"name": entities.username, "uid": user.get("uid") or entities.username, "type": kind},
        }
        if entities.session:
            actor["session"] = {"uid": entities.session}
        actors[actor_id] = actor
    return actor_id


def _workloads(member: Member, resources: dict[str, dict[str, Any]]) -> list[str]:
    uids = []
    for namespace, kind, name in member.entities.workloads:
        uid = workload_uid(member.entities.cluster, namespace, kind, name)
        if uid not in resources:
            data: dict[str, Any] = {"namespace": namespace}
            if kind in WORKLOAD_TYPES:
                data["type"] = WORKLOAD_TYPES[kind]
            resources[uid] = {"uid": uid, "name": name, "resourceType": "KUBERNETES_WORKLOAD",
                              "data": {"kubernetesWorkload": data}}
        uids.append(uid)
    return uids


def _endpoints(member: Member, endpoints: dict[str, dict[str, Any]]) -> list[str]:
    call = api_call_of(member.finding)
    remote = call.get("remoteIpDetails") or {}
    remote_ip = remote.get("ipAddressV4") or remote.get("ipAddressV6")
    ids = []
    for ip in member.entities.addresses:
        if ip not in endpoints:
            endpoint: dict[str, Any] = {"id": ip, "ip": ip}
            if ip == remote_ip:
                endpoint.update(_geo(remote))
            endpoints[ip] = endpoint
        ids.append(ip)
    return ids


def _geo(remote: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    country = (remote.get("country") or {}).get("countryName")
    if country:
        location = remote.get("geoLocation") or {}
        extra["location"] = {
            "city": (remote.get("city") or {}).get("cityName", "UNKNOWN"),
            "country": country,
            "lat": float(location.get("lat", 0.0)),
            "lon": float(location.get("lon", 0.0)),
        }
    organization = remote.get("organization") or {}
    if organization.get("asnOrg"):
        number = str(organization.get("asn", "0"))
        extra["autonomousSystem"] = {"name": organization["asnOrg"], "number": int(number) if number.isdigit() else 0}
    return extra


def _finding_signal(member: Member, actor_id: str, resources: list[str], endpoints: list[str]) -> dict[str, Any]:
    finding = member.finding
    service = finding.get("service") or {}
    indicators = []
    tactic = tactics.tactic_name(member.type)
    if tactic:
        indicators.append({"key": "ATTACK_TACTIC", "values": [tactic]})
    technique = tactics.technique_of(member.type)
    if technique:
        indicators.append({"key": "ATTACK_TECHNIQUE", "values": [technique]})
    signal: dict[str, Any] = {
        "uid": finding["arn"],
        "type": "FINDING",
        "description": str(finding.get("title") or finding.get("description") or "")[:2000],
        "name": member.type,
        "createdAt": _ms(finding.get("createdAt")) / 1000,
        "updatedAt": _ms(finding.get("updatedAt")) / 1000,
        "firstSeenAt": member.first_ms / 1000,
        "lastSeenAt": member.last_ms / 1000,
        "severity": float(finding.get("severity", 0)),
        "count": int(service.get("count", 1)),
        "resourceUids": resources,
        "actorIds": [actor_id],
        "endpointIds": endpoints,
    }
    if indicators:
        signal["signalIndicators"] = indicators
    return signal


def _weak_signal(signal: WeakSignal, actor_id: str, cluster_arn: str) -> dict[str, Any]:
    uid = hashlib.sha256("\x1f".join(signal.key).encode()).hexdigest()[:32]
    return {
        "uid": f"weak-signal/{uid}",
        "type": "EKS_AUDIT_LOGS",
        "description": f"{signal.name}: {signal.value} (first in findings {', '.join(signal.finding_ids[:5])})"[:2000],
        "name": signal.name,
        "createdAt": signal.first_ms / 1000,
        "updatedAt": signal.last_ms / 1000,
        "firstSeenAt": signal.first_ms / 1000,
        "lastSeenAt": signal.last_ms / 1000,
        "count": len(signal.finding_ids),
        "resourceUids": [cluster_arn],
        "actorIds": [actor_id] if actor_id else [],
        "endpointIds": list(signal.addresses),
        "signalIndicators": [
            {"key": signal.indicator, "values": [signal.value[:256]]},
            {"key": "ATTACK_TACTIC", "values": ["Initial Access"]},
            {"key": "ATTACK_TECHNIQUE", "values": ["T1078 Valid Accounts"]},
        ],
    }


def _indicators(chain: list[Member], signals: list[WeakSignal]) -> list[dict[str, Any]]:
    tactic_names: list[str] = []
    techniques: list[str] = []
    apis: list[str] = []
    agents: list[str] = []
    misconfigurations: list[str] = []
    for member in chain:
        for bucket, value in ((tactic_names, tactics.tactic_name(member.type)),
                              (techniques, tactics.technique_of(member.type))):
            if value and value not in bucket:
                bucket.append(value)
        call = api_call_of(member.finding)
        api = f"{call.get('verb', '')} {call.get('resource', '') or call.get('requestUri', '')}"
        if call.get("subresource"):
            api += f"/{call['subresource']}"
        if api in _HIGH_RISK_APIS and api not in apis:
            apis.append(api)
        agent = call.get("userAgent", "")
        if agent.startswith(_SCRIPT_AGENTS) and agent not in agents:
            agents.append(agent[:256])
        if member.type.startswith("Policy:") and member.type not in misconfigurations:
            misconfigurations.append(member.type)
    by_key: dict[str, list[str]] = defaultdict(list)
    for signal in signals:
        values = signal.addresses if signal.name == FLAGGED_IP else [signal.value[:256]]
        for value in values:
            if value not in by_key[signal.indicator]:
                by_key[signal.indicator].append(value)
    if signals and "Initial Access" not in tactic_names:
        tactic_names.insert(0, "Initial Access")
        techniques.insert(0, "T1078 Valid Accounts")
    for agent in agents:
        if agent not in by_key["SUSPICIOUS_USER_AGENT"]:
            by_key["SUSPICIOUS_USER_AGENT"].append(agent)
    indicators = [
        {"key": "ATTACK_TACTIC", "values": tactic_names, "title": "MITRE ATT&CK tactics"},
        {"key": "ATTACK_TECHNIQUE", "values": techniques, "title": "MITRE ATT&CK techniques"},
    ]
    if apis:
        indicators.append({"key": "HIGH_RISK_API", "values": apis, "title": "High-risk Kubernetes API calls"})
    for key, values in by_key.items():
        if values:
            indicators.append({"key": key, "values": values[:400]})
    if misconfigurations:
        indicators.append({"key": "MISCONFIGURATION", "values": misconfigurations})
    return [i for i in indicators if i["values"]]


def _summary(chain: list[Member], anchor: Member) -> str:
    stages = sorted({tactics.tactic_name(m.type) or "" for m in chain} - {""})
    return (
        f"{len(chain)} related findings in cluster {anchor.entities.cluster}, led by "
        f"{anchor.entities.username}, span {', '.join(stages)} within 24 hours: a likely compromise."
    )


def _description(chain: list[Member], signals: list[WeakSignal], anchor: Member) -> str:
    """Step by step: what happened, in order, one line per signal."""
    steps: list[tuple[int, str]] = []
    for signal in signals:
        steps.append((signal.first_ms, f"{signal.name}: {signal.value}"))
    for member in chain:
        call = api_call_of(member.finding)
        target = call.get("resourceName") or call.get("requestUri") or ""
        where = f" in {call['namespace']}" if call.get("namespace") else ""
        resource = call.get("resource", "") + (f"/{call['subresource']}" if call.get("subresource") else "")
        steps.append((member.first_ms, f"{member.type} — {call.get('verb', '')} {resource} "
                                        f"{target}{where} by {member.entities.username}"))
    steps.sort(key=lambda s: s[0])
    lines = [f"{index}. {_iso(at)[:19]}Z {text}" for index, (at, text) in enumerate(steps, 1)]
    return _summary(chain, anchor) + "\n" + "\n".join(lines)
