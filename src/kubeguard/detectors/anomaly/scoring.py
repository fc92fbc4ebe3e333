"""Is this action unusual for the one who did it? Frequency rarity with additive smoothing.

Why this method
    The question GuardDuty's AnomalousBehavior findings answer is categorical: has *this* principal
    called this API, from this network, with this tool, in this namespace, deploying this image,
    before? Each feature is a categorical distribution over a handful of values, so the natural
    estimate is its empirical frequency, and the natural score is how surprising the value is. We use
    Laplace (additive, alpha = 1) smoothing, ``p = (count + 1) / (total + distinct + 1)``, because it
    gives an unseen value a non-zero probability that shrinks as the history grows: a value never seen
    in 10 events is not news (p = 1/12), one never seen in 5,000 events is (p = 1/5,002). This makes
    the same rule safe for a pipeline that deployed four times and a controller that made a million
    calls, with no per-principal tuning. The result is explainable feature by feature, which a learned
    model (isolation forest, autoencoder) is not, and it costs a few dict look-ups per event.

    A value is *unusual* when its smoothed probability is below ``P_UNUSUAL`` and it is either unseen
    (UNSEEN) or rare: seen at most ``RARE_COUNT`` times, or first seen within ``RECENT_SECONDS`` (RARE).
    A value younger than ``RECENT_SECONDS`` is not yet part of the baseline: its probability is that of
    an unseen value against the history before it, so an attacker's burst of twenty calls from a new
    address does not make the address normal after the eighth. It is *strongly* unusual below
    ``P_STRONG``.

    Permission checks are sparse (a person runs ``kubectl auth can-i`` a few times a month), so a
    checked permission's rarity is measured against everything the principal does, not only against
    its other checks: "dave never checked ``* *`` in 480 calls" is the evidence, not "in 3 checks".

How features combine
    Features that move together count once: a new network and a new ASN are one fact (the caller
    moved), so the features fall into independent groups (API, namespace, source, user agent, image,
    permission). One unusual group is ordinary life (an engineer reads a secret of a namespace for the
    first time; a pipeline ships a new image); stolen credentials and abused identities change two or
    more things at once (new network *and* new client; a new API *and* a new client). So a candidate
    fires when

    * two or more groups are unusual, or
    * one group is strongly unusual and the action is risky by its content (a role with wildcards, a
      binding to cluster-admin, a privileged or host-mounting workload, a miner image, a powerful
      permission check, listing secrets of every namespace) — the case of an insider acting from their
      usual desk and tool.

    Scores (the summed surprisal, in bits, of the unusual features) are reported, not thresholded, so
    an analyst can sort by them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kubeguard.detectors.anomaly import features as f
from kubeguard.detectors.anomaly.profile import Counts

USER = "USER"
CLUSTER = "CLUSTER"

UNSEEN = "UNSEEN"
RARE = "RARE"
FREQUENT = "FREQUENT"
INFREQUENT = "INFREQUENT"

P_UNUSUAL = 0.05
P_STRONG = 0.01
RARE_COUNT = 2
RECENT_SECONDS = 86_400
#: A value with at least this share of a feature's history is FREQUENT in an explanation.
FREQUENT_SHARE = 0.10

#: Features that say the same thing count once.
GROUPS = {
    f.API: "api",
    f.NAMESPACE: "namespace",
    f.NETWORK: "source",
    f.ASN_ORG: "source",
    f.USER_AGENT: "agent",
    f.IMAGE: "image",
    f.PERMISSION: "permission",
}


@dataclass(slots=True)
class Unusual:
    """One feature value that did not fit the profile."""

    scope: str
    feature: str
    value: str
    subtype: str
    count: int
    total: int
    probability: float

    @property
    def bits(self) -> float:
        return -math.log2(self.probability)

    @property
    def strong(self) -> bool:
        return self.probability < P_STRONG


@dataclass(slots=True)
class Verdict:
    fire: bool
    unusual: list[Unusual] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(u.bits for u in self.unusual), 1)

    def features(self) -> list[str]:
        return list(dict.fromkeys(u.feature for u in self.unusual))


def smoothed(counts: Counts, value: str, total: int | None = None) -> float:
    """Laplace-smoothed probability of ``value`` among ``total`` observations (the feature's own by default);
    the ``other`` bucket counts as one more value."""
    distinct = len(counts.counts) + (1 if counts.other else 0)
    return (counts.count(value) + 1) / ((counts.total if total is None else total) + distinct + 1)


def judge(
    counts: Counts | None, value: str, at: int, scope: str, feature: str, total: int | None = None
) -> Unusual | None:
    """The value's rarity in one profile feature, or None when it is usual there.

    ``total`` replaces the feature's own history size as the denominator (see permission checks above).
    """
    if counts is None:
        counts = Counts()
    size = counts.total if total is None else total
    if size == 0:
        return None
    count = counts.count(value)
    recent = count > 0 and at - counts.first.get(value, 0) < RECENT_SECONDS
    if recent:
        distinct = len(counts.counts) + (1 if counts.other else 0)
        probability = 1 / max(1, size - count + distinct)
    else:
        probability = smoothed(counts, value, size)
    if probability >= P_UNUSUAL:
        return None
    if count == 0:
        return Unusual(scope, feature, value, UNSEEN, 0, size, probability)
    if count <= RARE_COUNT or recent:
        return Unusual(scope, feature, value, RARE, count, size, probability)
    return None


def decide(unusual: list[Unusual], risky: bool) -> Verdict:
    """Apply the combination rule of the module docstring."""
    groups = {GROUPS.get(u.feature, u.feature) for u in unusual}
    fire = len(groups) >= 2 or (len(groups) == 1 and risky and any(u.strong for u in unusual))
    return Verdict(fire, unusual)


def frequency(counts: Counts, value_count: int) -> str:
    return FREQUENT if counts.total and value_count / counts.total >= FREQUENT_SHARE else INFREQUENT
