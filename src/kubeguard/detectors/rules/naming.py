"""What a Sigma rule's metadata means for its findings: type name, tactic, technique and severity.

A rule's finding type is ``Tactic:Kubernetes/RuleName`` in GuardDuty's form: the tactic is the rule's
first ATT&CK tactic tag (``attack.privilege_escalation`` → ``PrivilegeEscalation``; ``Policy`` when it has
none, GuardDuty's purpose for findings that flag a practice rather than a technique), the name is the
rule's ``name`` if it sets one, else its title, in PascalCase. The severity follows the rule's ``level``
on GuardDuty's scale.
"""

from __future__ import annotations

import re

from kubeguard.detectors.base import SEVERITY_CRITICAL, SEVERITY_HIGH, SEVERITY_LOW, SEVERITY_MEDIUM

#: ATT&CK tactic tags (both spellings SigmaHQ has used) → GuardDuty's threat purpose names.
TACTICS = {
    "reconnaissance": "Recon",
    "resource_development": "ResourceDevelopment",
    "initial_access": "InitialAccess",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege_escalation": "PrivilegeEscalation",
    "defense_evasion": "DefenseEvasion",
    "credential_access": "CredentialAccess",
    "discovery": "Discovery",
    "lateral_movement": "LateralMovement",
    "collection": "Collection",
    "command_and_control": "CommandAndControl",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
}
NO_TACTIC = "Policy"

SEVERITIES = {
    "informational": 1.0,
    "low": SEVERITY_LOW,
    "medium": SEVERITY_MEDIUM,
    "high": SEVERITY_HIGH,
    "critical": SEVERITY_CRITICAL,
}
#: The Custom Detection Rules API's severity words for a number on GuardDuty's scale.
SEVERITY_WORDS = ((SEVERITY_CRITICAL, "CRITICAL"), (7.0, "HIGH"), (4.0, "MEDIUM"), (0.0, "LOW"))

_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")
_MAX_TYPE = 100  # GuardDuty's FindingType length limit


def tactic(tags: list[tuple[str, str]]) -> str:
    for namespace, name in tags:
        if namespace == "attack":
            found = TACTICS.get(name.replace("-", "_").lower())
            if found:
                return found
    return NO_TACTIC


def technique(tags: list[tuple[str, str]]) -> str:
    """The first ATT&CK technique (``T1611``, ``T1552.007``), or "" when the rule names none."""
    for namespace, name in tags:
        if namespace == "attack" and _TECHNIQUE.match(name.lower()):
            return name.upper()
    return ""


def pascal_case(text: str) -> str:
    """``Pod with hostNetwork created`` → ``PodWithHostNetworkCreated``; keeps inner capitals."""
    words = re.findall(r"[A-Za-z0-9]+", text.replace("'", ""))
    return "".join(word[0].upper() + word[1:] for word in words)


def finding_type(tactic_name: str, rule_name: str) -> str:
    prefix = f"{tactic_name}:Kubernetes/"
    return prefix + (pascal_case(rule_name) or "CustomRule")[: _MAX_TYPE - len(prefix)]


def severity(level: str | None) -> float:
    return SEVERITIES.get((level or "medium").lower(), SEVERITY_MEDIUM)


def severity_word(value: float) -> str:
    for floor, word in SEVERITY_WORDS:
        if value >= floor:
            return word
    return "LOW"


def rule_id(text: str) -> str:
    """An id the Custom Detection Rules API accepts (``[a-z0-9]+(-[a-z0-9]+)*``, at most 100)."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text).lower())
    return "-".join(words)[:100].strip("-") or "rule"
