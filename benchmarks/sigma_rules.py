"""A synthetic set of Sigma rules shaped like real ones, for ``benchmarks/scan.py --sigma-rules N``.

The mix matters more than the count: most real rules name a verb and a resource (the detector indexes
them and never offers them other events), some read request bodies, and some constrain neither and run
on every event (user agents, source networks, failed calls). The rules match rarely, as real ones do.
"""

from __future__ import annotations

from pathlib import Path

import yaml

_RESOURCES = ("pods", "deployments", "daemonsets", "secrets", "configmaps", "clusterrolebindings",
              "rolebindings", "serviceaccounts", "services", "namespaces")
_VERBS = ("create", "update", "patch", "delete", "get", "list")


def _detection(index: int) -> dict:
    resource = _RESOURCES[index % len(_RESOURCES)]
    verb = _VERBS[(index // len(_RESOURCES)) % len(_VERBS)]
    kind = index % 10
    if kind < 4:  # a verb, a resource and a body field
        return {"sel": {"verb": verb, "objectRef.resource": resource,
                        "requestObject.spec.containers.image|contains": f"miner-{index}"},
                "condition": "sel"}
    if kind < 6:  # a resource, a user pattern, an exclusion
        return {"sel": {"verb": ["get", "list"], "objectRef.resource": resource,
                        "user.username|startswith": f"intruder-{index}"},
                "system": {"user.groups|contains": "system:masters"},
                "condition": "sel and not system"}
    if kind < 8:  # unindexed: a user agent regex
        return {"sel": {"userAgent|re": f"^(evil-tool-{index}|scanner{index})/"}, "condition": "sel"}
    if kind < 9:  # unindexed: a network and a failure
        return {"sel": {"sourceIPs|cidr": f"198.51.{index % 256}.0/24", "responseStatus.code|gte": 400},
                "condition": "sel"}
    return {"sel": {"objectRef.namespace": "kube-system", "verb": ["delete", "patch"]},  # verbs only
            "deny": {"annotations.authorization.k8s.io/decision": "forbid"},
            "who": {"user.username|endswith": f"-{index}"},
            "condition": "sel and deny and who"}


def write_rules(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rule = {
            "title": f"Synthetic rule {index}",
            "logsource": {"product": "kubernetes", "service": "audit"},
            "detection": _detection(index),
            "level": ("low", "medium", "high")[index % 3],
            "tags": ["attack.discovery"],
        }
        (directory / f"rule-{index:03}.yml").write_text(yaml.safe_dump(rule, sort_keys=False))
    return directory
