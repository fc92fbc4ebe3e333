"""The catalogue of finding types kubeguard can raise, with GuardDuty's names, severities and titles.

Names and default severities are GuardDuty's (reference §1.3-1.5); titles follow GuardDuty's wording
style. The catalogue is data so that the API (CreateSampleFindings), the docs and the tests can list
every type without importing the detectors.

Two kinds of type are marked, in the finding itself (``service.additionalInfo.value``, the free-form JSON
GuardDuty's own tooling and filters already read; see :meth:`FindingType.markers`):

* GuardDuty **retired** ``PrivilegedContainer`` and ``ContainerWithSensitiveMount``; kubeguard keeps
  raising them (they catch real attacks) with ``"retiredFindingType": true``.
* kubeguard's **extensions** (types GuardDuty does not have, in its ``Tactic:Kubernetes/Name`` form) carry
  ``"kubeguardExtension": true``, their MITRE ATT&CK technique, and the pack that ships them when they
  are opt-in (``"detectionPack": "audit-trail"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeguard.detectors.base import SEVERITY_HIGH, SEVERITY_LOW, SEVERITY_MEDIUM

#: The opt-in pack of audit-trail detections: right for a compliance trail, noisy as alerts because
#: ordinary administration (granting cluster-admin, exec into an app pod, creating roles) raises them.
AUDIT_TRAIL_PACK = "audit-trail"


@dataclass(frozen=True, slots=True)
class FindingType:
    name: str
    severity: float
    title: str
    #: GuardDuty retired the type; kubeguard still raises it.
    retired: bool = False
    #: Not a GuardDuty type: kubeguard's own, in GuardDuty's naming form.
    extension: bool = False
    #: MITRE ATT&CK technique, ``"T1611 Escape to Host"`` (ID, space, name).
    technique: str = ""
    #: The opt-in pack that ships the detection; empty for detections on by default.
    pack: str = ""

    def markers(self) -> dict[str, object]:
        """What a finding of this type says about the type, as ``service.additionalInfo`` keys."""
        marks: dict[str, object] = {}
        if self.retired:
            marks["retiredFindingType"] = True
        if self.extension:
            marks["kubeguardExtension"] = True
        if self.technique:
            technique_id, _, technique_name = self.technique.partition(" ")
            marks["mitreTechnique"] = technique_id
            marks["mitreTechniqueName"] = technique_name
        if self.pack:
            marks["detectionPack"] = self.pack
        return marks


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
        retired=True,
        technique="T1611 Escape to Host",
    ),
    FindingType(
        "Persistence:Kubernetes/ContainerWithSensitiveMount",
        SEVERITY_MEDIUM,
        "Container launched with a sensitive external host path mounted inside.",
        retired=True,
        technique="T1611 Escape to Host",
    ),
)


def _extension(name: str, severity: float, title: str, technique: str, pack: str = "") -> FindingType:
    return FindingType(name, severity, title, extension=True, technique=technique, pack=pack)


#: kubeguard's own detections (docs/detections.md explains each). On by default: silent on ordinary
#: administration. The audit-trail pack: opt-in (``[detectors] packs = ["audit-trail"]``).
_EXTENSIONS = (
    _extension(
        "PrivilegeEscalation:Kubernetes/PrivilegedIdentityImpersonated",
        SEVERITY_HIGH,
        "A user impersonated a cluster administrator, node or control-plane identity.",
        "T1078 Valid Accounts",
    ),
    _extension(
        "CredentialAccess:Kubernetes/SystemServiceAccountTokenRequested",
        SEVERITY_HIGH,
        "A user obtained a token for a kube-system service account.",
        "T1528 Steal Application Access Token",
    ),
    _extension(
        "CredentialAccess:Kubernetes/CertificateSigningRequestApprovedByUser",
        SEVERITY_MEDIUM,
        "A user, not the cluster's signer controller, approved a certificate signing request.",
        "T1649 Steal or Forge Authentication Certificates",
    ),
    _extension(
        "Persistence:Kubernetes/SystemClusterRoleModified",
        SEVERITY_MEDIUM,
        "A Kubernetes system ClusterRole or ClusterRoleBinding was modified or deleted by a user.",
        "T1098 Account Manipulation",
    ),
    _extension(
        "Execution:Kubernetes/KubeletCommandThroughNodeProxy",
        SEVERITY_HIGH,
        "A command was run in a container through the kubelet API (nodes/proxy), bypassing pods/exec.",
        "T1609 Container Administration Command",
    ),
    _extension(
        "CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials",
        SEVERITY_MEDIUM,
        "A ConfigMap was written with private credentials in it.",
        "T1552 Unsecured Credentials",
    ),
    _extension(
        "PrivilegeEscalation:Kubernetes/ContainerWithDangerousCapabilities",
        SEVERITY_MEDIUM,
        "A container was launched with Linux capabilities that allow escaping to the host.",
        "T1611 Escape to Host",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "PrivilegeEscalation:Kubernetes/PermissiveClusterRoleCreated",
        SEVERITY_LOW,
        "A ClusterRole with wildcard, write, exec or escalation permissions was created or changed.",
        "T1098 Account Manipulation",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "PrivilegeEscalation:Kubernetes/ClusterAdminRoleBound",
        SEVERITY_MEDIUM,
        "The cluster-admin ClusterRole was bound to a subject.",
        "T1098 Account Manipulation",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "Persistence:Kubernetes/WorkloadCreatedInSystemNamespace",
        SEVERITY_LOW,
        "A user created a workload in the kube-system or kube-public namespace.",
        "T1610 Deploy Container",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace",
        SEVERITY_LOW,
        "A user created a service account in the kube-system or kube-public namespace.",
        "T1136 Create Account",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "Execution:Kubernetes/ExecInPod",
        SEVERITY_LOW,
        "A command was executed in, or a terminal attached to, a pod.",
        "T1609 Container Administration Command",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "Policy:Kubernetes/NodePortServiceCreated",
        SEVERITY_LOW,
        "A Service of type NodePort opened a port on every node of the cluster.",
        "T1133 External Remote Services",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "PrivilegeEscalation:Kubernetes/WorkloadInHostNamespaces",
        SEVERITY_LOW,
        "A workload was launched sharing the node's network, process or IPC namespace.",
        "T1611 Escape to Host",
        AUDIT_TRAIL_PACK,
    ),
    _extension(
        "Persistence:Kubernetes/AdmissionWebhookConfigured",
        SEVERITY_MEDIUM,
        "A user created or changed an admission webhook configuration.",
        "T1546 Event Triggered Execution",
        AUDIT_TRAIL_PACK,
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
        *_EXTENSIONS,
    )
}

ALL_FINDING_TYPES: tuple[str, ...] = tuple(CATALOGUE)
#: GuardDuty's own EKS audit-log types (35, two of them retired).
GUARDDUTY_FINDING_TYPES: tuple[str, ...] = tuple(name for name, t in CATALOGUE.items() if not t.extension)
EXTENSION_FINDING_TYPES: tuple[str, ...] = tuple(name for name, t in CATALOGUE.items() if t.extension)


def get(name: str) -> FindingType:
    return CATALOGUE[name]
