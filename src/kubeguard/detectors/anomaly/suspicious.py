"""What makes an action risky by its content, whoever does it.

These judgements decide which actions are *candidates* for an anomaly finding (a role with excessive
permissions, a binding to an overly permissive role or in a sensitive namespace, a powerful permission
check) and which candidates are risky enough that one strongly unusual attribute suffices (see
:mod:`kubeguard.detectors.anomaly.scoring`). They look only at the object, never at the caller, so
they can be read and tested as tables.
"""

from __future__ import annotations

import re

from kubeguard.audit.objects import Container, PolicyRule, ResourceAttributes, Role

#: Namespaces whose bindings reach the control plane or the cluster's own add-ons (reference §1.5,
#: "sensitive namespace" [inferred]).
SENSITIVE_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

#: Words in an image repository that name an offensive tool or a miner rather than an application.
_SUSPICIOUS_IMAGE_WORDS = (
    "xmrig", "xmr-stak", "cpuminer", "minerd", "ethminer", "nbminer", "t-rex", "lolminer", "phoenixminer",
    "kali", "metasploit", "nmap", "masscan", "zmap", "sqlmap", "hydra", "hashcat", "mimikatz",
    "peirates", "kube-hunter", "kubehunter", "cdk", "deepce", "botb", "linpeas", "impacket", "cobaltstrike",
    "sliver", "empire", "pwncat", "chisel", "ngrok", "socat", "netcat", "ncat",
)
_IMAGE_WORD = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")

#: Launch commands of reverse shells, droppers and miners.
_SUSPICIOUS_COMMANDS = (
    re.compile(r"/dev/(?:tcp|udp)/"),
    re.compile(r"\b(?:nc|ncat|netcat)\b[^|;&]*\s-(?:[a-z]*e|c)\b"),
    re.compile(r"\bsocat\b.*\bexec:"),
    re.compile(r"\bmkfifo\b.*\b(?:nc|ncat|sh)\b"),
    re.compile(r"\bpython[0-9.]*\b.*\bsocket\b.*\b(?:connect|dup2)\b"),
    re.compile(r"\b(?:curl|wget)\b[^|]*\|\s*(?:ba|z|da)?sh\b"),
    re.compile(r"stratum\+(?:tcp|ssl)://"),
    re.compile(r"\bxmrig\b"),
    re.compile(r"\bperl\b.*\bsocket\b"),
)

#: Verbs that let a principal grant itself more than it has.
_ESCALATING_VERBS = frozenset({"escalate", "bind", "impersonate"})
_WRITE_VERBS = frozenset({"create", "update", "patch", "*"})
_READ_VERBS = frozenset({"get", "list", "watch", "*"})


def suspicious_image(image: str) -> str:
    """The offending word when ``image``'s repository names a pentest tool or a miner, else ''."""
    repository = image_repository(image).lower()
    words = set(_IMAGE_WORD.findall(repository.replace("/", " ").replace(".", " ")))
    for part in repository.split("/"):
        words.update(part.split("-"))
        words.add(part)
    return next((w for w in _SUSPICIOUS_IMAGE_WORDS if w in words), "")


def suspicious_command(container: Container) -> str:
    """The container's command line when it looks like a reverse shell or a miner, else ''."""
    line = " ".join([*container.command, *container.args])
    return line if any(pattern.search(line) for pattern in _SUSPICIOUS_COMMANDS) else ""


def image_repository(image: str) -> str:
    """``registry/path/name`` without tag or digest: what a profile remembers, stable across releases."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def rule_excesses(rule: PolicyRule) -> list[str]:
    """Why one policy rule is excessive (reference §1.5, RoleCreated [inferred]); empty when it is not."""
    verbs = set(rule.verbs)
    resources = set(rule.resources)
    found: list[str] = []
    if "*" in verbs:
        found.append("wildcard verbs")
    if "*" in resources:
        found.append("wildcard resources")
    if verbs & _ESCALATING_VERBS:
        found.append("verbs " + ",".join(sorted(verbs & _ESCALATING_VERBS)))
    if resources & {"pods/exec", "pods/attach"} and verbs & (_WRITE_VERBS | {"get"}):
        found.append("pods/exec")
    if "secrets" in resources and verbs & _READ_VERBS:
        found.append("secrets")
    if "serviceaccounts/token" in resources and verbs & _WRITE_VERBS:
        found.append("serviceaccounts/token")
    if resources & {"nodes/proxy"}:
        found.append("nodes/proxy")
    return found


def role_excesses(role: Role) -> list[str]:
    """Every distinct reason a (Cluster)Role is excessive, in rule order."""
    found: list[str] = []
    for rule in role.rules or ():
        for reason in rule_excesses(rule):
            if reason not in found:
                found.append(reason)
    return found


def permission_name(attributes: ResourceAttributes) -> str:
    """``create pods/exec`` or ``* *``: a checked permission as a profile value."""
    resource = attributes.resource or "*"
    if attributes.subresource:
        resource = f"{resource}/{attributes.subresource}"
    return f"{attributes.verb or '*'} {resource}"


def is_powerful_permission(attributes: ResourceAttributes) -> bool:
    """A permission that leads to privilege escalation or remote code execution (reference §1.5)."""
    verb = attributes.verb or "*"
    resource = attributes.resource or "*"
    sub = attributes.subresource
    rule = PolicyRule(verbs=[verb], resources=[f"{resource}/{sub}" if sub else resource])
    if rule_excesses(rule):
        return True
    writes = verb in _WRITE_VERBS
    if writes and resource in ("clusterrolebindings", "rolebindings", "clusterroles", "roles"):
        return True
    if writes and resource == "pods" and (sub == "ephemeralcontainers" or attributes.namespace == "kube-system"):
        return True
    return resource == "certificatesigningrequests" and sub == "approval"
