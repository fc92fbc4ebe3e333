"""The catalogue of finding types kubeguard can raise, with GuardDuty's names, severities and titles.

Names and default severities are GuardDuty's (reference §1.3-1.5); titles follow GuardDuty's wording
style. The catalogue is data so that the API (CreateSampleFindings), the docs and the tests can list
every type without importing the detectors.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeguard.detectors.base import SEVERITY_HIGH, SEVERITY_LOW, SEVERITY_MEDIUM


@dataclass(frozen=True, slots=True)
class FindingType:
    name: str
    severity: float
    title: str


TACTICS = ("CredentialAccess", "DefenseEvasion", "Discovery", "Impact", "Persistence")

_TACTIC_PHRASES = {
    "CredentialAccess": "used to obtain credentials or secrets",
    "DefenseEvasion": "used to evade defensive measures",
    "Discovery": "used to discover resources",
    "Impact": "used to tamper with resources",
    "Persistence": "used to gain or keep access",
}

_CALLER_SEVERITY = {
    ("MaliciousIPCaller", "Discovery"): SEVERITY_MEDIUM,
    ("MaliciousIPCaller", "Persistence"): SEVERITY_MEDIUM,
    ("MaliciousIPCaller.Custom", "Discovery"): SEVERITY_MEDIUM,
    ("MaliciousIPCaller.Custom", "Persistence"): SEVERITY_MEDIUM,
    ("TorIPCaller", "Discovery"): SEVERITY_MEDIUM,
    ("TorIPCaller", "Persistence"): SEVERITY_MEDIUM,
    ("SuccessfulAnonymousAccess", "Discovery"): SEVERITY_MEDIUM,
}

_CALLER_TITLES = {
    "MaliciousIPCaller": "invoked from a known malicious IP address.",
    "MaliciousIPCaller.Custom": "invoked from an IP address on a custom threat list.",
    "TorIPCaller": "invoked from a Tor exit node IP address.",
    "SuccessfulAnonymousAccess": "was successfully invoked by an unauthenticated user.",
}


def caller_type(tactic: str, variant: str) -> FindingType:
    name = f"{tactic}:Kubernetes/{variant}"
    severity = _CALLER_SEVERITY.get((variant, tactic), SEVERITY_HIGH)
    title = f"Kubernetes API commonly {_TACTIC_PHRASES[tactic]} {_CALLER_TITLES[variant]}"
    return FindingType(name, severity, title)


_SIGNATURES = (
    FindingType(
        "Execution:Kubernetes/ExecInKubeSystemPod",
        SEVERITY_MEDIUM,
        "Command executed inside a pod in the kube-system namespace.",
    ),
    FindingType(
        "Policy:Kubernetes/AdminAccessToDefaultServiceAccount",
        SEVERITY_HIGH,
        "The default service account was granted admin privileges on a Kubernetes cluster.",
    ),
    FindingType(
        "Policy:Kubernetes/AnonymousAccessGranted",
        SEVERITY_HIGH,
        "The system:anonymous user was granted API permission on a Kubernetes cluster.",
    ),
    FindingType(
        "Policy:Kubernetes/ExposedDashboard",
        SEVERITY_MEDIUM,
        "The dashboard for a Kubernetes cluster was exposed to the internet.",
    ),
    FindingType(
        "Policy:Kubernetes/KubeflowDashboardExposed",
        SEVERITY_MEDIUM,
        "The dashboard for Kubeflow was exposed to the internet.",
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
        SEVERITY_MEDIUM,
        "Privileged container with root level access launched on a Kubernetes cluster.",
    ),
    FindingType(
        "Persistence:Kubernetes/ContainerWithSensitiveMount",
        SEVERITY_MEDIUM,
        "Container launched with a sensitive external host path mounted inside.",
    ),
)

_ANOMALIES = (
    FindingType(
        "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",
        SEVERITY_MEDIUM,
        "A Kubernetes API commonly used to access secrets was invoked in an unusual way.",
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated",
        SEVERITY_MEDIUM,
        "A role binding was created or modified in an unusual way to an overly permissive role.",
    ),
    FindingType(
        "Execution:Kubernetes/AnomalousBehavior.ExecInPod",
        SEVERITY_MEDIUM,
        "A command was executed inside a pod in an unusual way.",
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        SEVERITY_HIGH,
        "A workload with a privileged container was deployed in an unusual way.",
    ),
    FindingType(
        "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",
        SEVERITY_HIGH,
        "A workload with a sensitive host path mounted was deployed in an unusual way.",
    ),
    FindingType(
        "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",
        SEVERITY_LOW,
        "A workload was deployed in an unusual way.",
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",
        SEVERITY_LOW,
        "A role with excessive permissions was created or modified in an unusual way.",
    ),
    FindingType(
        "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",
        SEVERITY_LOW,
        "A user checked whether it has powerful permissions in an unusual way.",
    ),
)

CALLER_VARIANTS = ("MaliciousIPCaller", "MaliciousIPCaller.Custom", "TorIPCaller", "SuccessfulAnonymousAccess")

CATALOGUE: dict[str, FindingType] = {
    t.name: t
    for t in (
        *(caller_type(tactic, variant) for variant in CALLER_VARIANTS for tactic in TACTICS),
        *_SIGNATURES,
        *_ANOMALIES,
    )
}

ALL_FINDING_TYPES: tuple[str, ...] = tuple(CATALOGUE)


def get(name: str) -> FindingType:
    return CATALOGUE[name]
