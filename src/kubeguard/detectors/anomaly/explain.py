"""Explanations: GuardDuty's ``service.detection.anomaly``, a one-sentence description, additionalInfo.

``profiles`` shows what is normal: per scope (``USER`` for the principal, ``CLUSTER`` for the
cluster) and feature, the FREQUENT and INFREQUENT values with their counts. ``unusual.behavior`` shows
what did not fit, with UNSEEN or RARE, so a reader sees *why* in one glance (reference §2.5).
"""

from __future__ import annotations

from typing import Any

from kubeguard.detectors.anomaly.profile import ClusterProfile, Counts, PrincipalProfile
from kubeguard.detectors.anomaly.scoring import CLUSTER, FREQUENT, FREQUENT_SHARE, INFREQUENT, USER, Verdict

FREQUENCY = "FREQUENCY"
#: Values listed per feature and frequency class in ``profiles``.
PROFILE_VALUES = 5

_PHRASES = {
    "kubernetesApi": "API",
    "namespace": "namespace",
    "network": "network",
    "asnOrg": "ASN organisation",
    "userAgent": "user agent",
    "image": "image",
    "permission": "permission check",
}


def anomaly_object(subtype: str, texts: list[str], numbers: list[int]) -> dict[str, Any]:
    return {"profileType": FREQUENCY, "profileSubtype": subtype, "observations": {"text": texts, "number": numbers}}


def _profile_objects(counts: Counts) -> list[dict[str, Any]]:
    """FREQUENT and INFREQUENT values of one feature (most frequent first), as AnomalyObjects."""
    frequent: list[tuple[str, int]] = []
    infrequent: list[tuple[str, int]] = []
    for value, count in counts.top(2 * PROFILE_VALUES):
        (frequent if count / counts.total >= FREQUENT_SHARE else infrequent).append((value, count))
    objects = []
    for subtype, pairs in ((FREQUENT, frequent), (INFREQUENT, infrequent)):
        if pairs:
            pairs = pairs[:PROFILE_VALUES]
            objects.append(anomaly_object(subtype, [v for v, _ in pairs], [c for _, c in pairs]))
    return objects


def anomaly(
    verdict: Verdict, profile: PrincipalProfile, cluster: ClusterProfile, features: list[str]
) -> dict[str, Any]:
    """The ``anomaly`` wire object for a verdict on ``features`` of ``profile``'s principal."""
    profiles: dict[str, dict[str, list[dict[str, Any]]]] = {USER: {}, CLUSTER: {}}
    for name in features:
        counts = profile.features.get(name)
        if counts is not None and counts.total:
            profiles[USER][name] = _profile_objects(counts)
        cluster_counts = cluster.features.get(name)
        if cluster_counts is not None and cluster_counts.total:
            profiles[CLUSTER][name] = _profile_objects(cluster_counts)
    behavior: dict[str, dict[str, dict[str, Any]]] = {}
    for item in verdict.unusual:
        behavior.setdefault(item.scope, {})[item.feature] = anomaly_object(item.subtype, [item.value], [item.count])
    return {"profiles": {scope: found for scope, found in profiles.items() if found},
            "unusual": {"behavior": behavior}}


def sentence(action: str, principal: str, verdict: Verdict) -> str:
    """``alice listed secrets ... with an unseen network 203.0.113.0/24 and a rare user agent curl/v8.5``."""
    parts = []
    for item in verdict.unusual:
        where = " for the cluster" if item.scope == CLUSTER else ""
        parts.append(f"{item.subtype.lower()}{where} {_PHRASES.get(item.feature, item.feature)} {item.value}")
    return f"{principal} {action} anomalously: " + ", ".join(parts) + "."


def additional_info(verdict: Verdict) -> dict[str, Any]:
    """``anomalies.anomalousAPIs`` and ``unusual.<feature>`` keys, plus the score, for additionalInfo."""
    info: dict[str, Any] = {"anomalyScore": verdict.score}
    unusual: dict[str, str] = {}
    for item in verdict.unusual:
        key = item.feature if item.scope == USER else f"cluster.{item.feature}"
        unusual[key] = item.value
        if item.feature == "kubernetesApi":
            info["anomalies"] = {"anomalousAPIs": item.value}
    info["unusual"] = unusual
    return info

