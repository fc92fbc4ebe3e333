"""CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials (kubeguard extension).

ConfigMaps are readable by far more identities than Secrets (``view`` grants them; they are logged in
full by most audit policies), so credentials in one are exposed. Reported: a PEM private key, an AWS
secret access key, and a password or passphrase assigned a literal value (``db.password = s3cr3t``,
a data key ``DB_PASSWORD``). References and placeholders (``${DB_PASSWORD}``, ``{{ .Values.pw }}``,
``<changeme>``, ``****``) are not credentials; nor is a setting about passwords (``password_min_length``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec

from kubeguard.audit.event import AuditEvent
from kubeguard.audit.objects import ObjectMeta, read_object
from kubeguard.detectors.base import Detection, DetectionContext
from kubeguard.detectors.common import make_detection, who

FINDING = "CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials"

_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
#: Names whose value is a credential: AWS keys (as Falco's rule lists them), passwords, passphrases.
_CREDENTIAL_NAME = (
    r"aws[_-](?:s3[_-])?(?:access[_-]key[_-]id|secret[_-]access[_-]key)|[\w.-]*?password|[\w.-]*?passphrase"
)
#: ``name = value`` / ``name: value`` / ``"name": "value"`` inside a file held in the ConfigMap.
_ASSIGNMENT = re.compile(
    rf"""(?im)^[ \t"']*(?P<name>{_CREDENTIAL_NAME})["']?[ \t]*[=:][ \t]*["']?(?P<value>[^\s"',]*)""",
)
#: A value that refers to a credential kept elsewhere, or stands in for one.
_PLACEHOLDER = re.compile(r"^(?:\$|\{\{|<|%\(|\*+$|x+$|changeme$|null$|none$|true$|false$|~$)", re.IGNORECASE)


class ConfigMap(msgspec.Struct, omit_defaults=True):
    kind: str = ""
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    data: dict[str, str] | None = None


def _is_literal(value: str) -> bool:
    return bool(value) and not _PLACEHOLDER.match(value)


def credentials_in(config: ConfigMap) -> list[str]:
    """``key: what`` for every credential found, naming the data key and the kind (never the value)."""
    found = []
    for key, text in (config.data or {}).items():
        if _PRIVATE_KEY.search(text):
            found.append(f"{key}: private key")
            continue
        if re.fullmatch(_CREDENTIAL_NAME, key, re.IGNORECASE) and _is_literal(text.strip()):
            found.append(f"{key}: {key}")
            continue
        names = sorted({m["name"] for m in _ASSIGNMENT.finditer(text) if _is_literal(m["value"])})
        if names:
            found.append(f"{key}: {', '.join(names)}")
    return found


class ConfigMapWithPrivateCredentials:
    name = "configmap-with-private-credentials"
    stateless = True  # reads only the event and the intel: a split scan may run it anywhere
    finding_types = (FINDING,)
    wants = (("create", "configmaps"), ("update", "configmaps"), ("patch", "configmaps"))

    def detect(self, event: AuditEvent, ctx: DetectionContext) -> Iterator[Detection]:
        config = read_object(event, ConfigMap, lambda c: c.data is not None)
        if config is None:
            return
        found = credentials_in(config)
        if not found:
            return
        namespace = config.metadata.namespace or event.namespace
        name = config.metadata.name or event.name
        yield make_detection(
            FINDING,
            event,
            key=f"configmaps/{namespace}/{name}",
            description=(
                f"{who(event)} wrote ConfigMap {namespace}/{name} on cluster {event.cluster} holding "
                f"credentials ({'; '.join(found)}). ConfigMaps are readable by anyone with view rights and "
                f"logged in full; credentials belong in Secrets."
            ),
            parameters="; ".join(found),
        )
