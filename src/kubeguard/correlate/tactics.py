"""Where a finding sits in an intrusion: its MITRE ATT&CK tactic and technique, and its kill-chain stage.

The tactic comes from the finding type's prefix (``CredentialAccess:Kubernetes/...``), as GuardDuty names
them; the ``Policy:`` findings, which GuardDuty files under no tactic, are placed by what the change
enables. Techniques are the ATT&CK for Containers entries each detection is evidence of.

Stages (the order an intrusion moves through, and what an attack sequence must span):

- ``ACCESS``: getting in — an anonymous or threat-listed caller, an exposed dashboard, or a subject's
  credentials seen from an ASN, network or client it has not used (weak signals, see :mod:`.signals`);
- ``RECON``: credential access and discovery — reading secrets, checking permissions, listing the cluster;
- ``ACTION``: execution, privilege escalation, persistence, defence evasion and impact — exec into pods,
  new roles and bindings, privileged or host-mounting workloads, tampering.
"""

from __future__ import annotations

ACCESS = "ACCESS"
RECON = "RECON"
ACTION = "ACTION"

#: ATT&CK tactic names by GuardDuty's type prefix.
TACTIC_NAMES = {
    "InitialAccess": "Initial Access",
    "CredentialAccess": "Credential Access",
    "Discovery": "Discovery",
    "Execution": "Execution",
    "PrivilegeEscalation": "Privilege Escalation",
    "Persistence": "Persistence",
    "DefenseEvasion": "Defense Evasion",
    "Impact": "Impact",
}

_STAGE_OF_TACTIC = {
    "InitialAccess": ACCESS,
    "CredentialAccess": RECON,
    "Discovery": RECON,
    "Execution": ACTION,
    "PrivilegeEscalation": ACTION,
    "Persistence": ACTION,
    "DefenseEvasion": ACTION,
    "Impact": ACTION,
}

#: Tactic of the Policy findings, by what the misconfiguration hands an attacker.
_POLICY_TACTICS = {
    "Policy:Kubernetes/AnonymousAccessGranted": "Persistence",
    "Policy:Kubernetes/AdminAccessToDefaultServiceAccount": "PrivilegeEscalation",
    "Policy:Kubernetes/ExposedDashboard": "InitialAccess",
    "Policy:Kubernetes/KubeflowDashboardExposed": "InitialAccess",
}

#: Caller variants whose mere presence says the caller got in from somewhere it should not.
_ACCESS_VARIANTS = ("MaliciousIPCaller", "TorIPCaller", "SuccessfulAnonymousAccess")

_TECHNIQUES = (
    # (substring of the finding type, technique)
    ("SecretsAccessed", "T1552.007 Unsecured Credentials: Container API"),
    ("CredentialAccess:", "T1552.007 Unsecured Credentials: Container API"),
    ("PermissionChecked", "T1069 Permission Groups Discovery"),
    ("Discovery:", "T1613 Container and Resource Discovery"),
    ("ExecIn", "T1609 Container Administration Command"),
    ("PrivilegedContainer", "T1611 Escape to Host"),
    ("ContainerWithSensitiveMount", "T1611 Escape to Host"),
    ("WorkloadDeployed", "T1610 Deploy Container"),
    ("RoleBindingCreated", "T1098.006 Account Manipulation: Additional Container Cluster Roles"),
    ("RoleCreated", "T1098.006 Account Manipulation: Additional Container Cluster Roles"),
    ("AnonymousAccessGranted", "T1098.006 Account Manipulation: Additional Container Cluster Roles"),
    ("AdminAccessToDefaultServiceAccount", "T1098.006 Account Manipulation: Additional Container Cluster Roles"),
    ("Dashboard", "T1133 External Remote Services"),
    ("TorIPCaller", "T1090.003 Proxy: Multi-hop Proxy"),
    ("SuccessfulAnonymousAccess", "T1078.001 Valid Accounts: Default Accounts"),
    ("MaliciousIPCaller", "T1078 Valid Accounts"),
    ("DefenseEvasion:", "T1562 Impair Defenses"),
    ("Persistence:", "T1098 Account Manipulation"),
    ("Impact:", "T1565 Data Manipulation"),
)


def tactic_of(finding_type: str) -> str:
    """The tactic prefix of a finding type (``Policy:`` types mapped by :data:`_POLICY_TACTICS`)."""
    if finding_type in _POLICY_TACTICS:
        return _POLICY_TACTICS[finding_type]
    return finding_type.partition(":")[0]


def stages_of(finding_type: str) -> set[str]:
    """The stages a finding of this type is evidence of (an anonymous secrets read is ACCESS and RECON)."""
    stages = set()
    stage = _STAGE_OF_TACTIC.get(tactic_of(finding_type))
    if stage:
        stages.add(stage)
    variant = finding_type.rpartition("/")[2]
    if variant.startswith(_ACCESS_VARIANTS):
        stages.add(ACCESS)
    return stages


def tactic_name(finding_type: str) -> str | None:
    return TACTIC_NAMES.get(tactic_of(finding_type))


def technique_of(finding_type: str) -> str | None:
    for marker, technique in _TECHNIQUES:
        if marker in finding_type:
            return technique
    return None
