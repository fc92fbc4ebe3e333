"""Settings shared by every mode: the account identity findings carry, clusters, intel, anomaly, sinks.

Settings come from a TOML file (``--config``) with command-line options layered on top. Every field has
a default that works on a laptop, so no file is needed to start.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import msgspec


class ClusterConfig(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """What ``resource.eksClusterDetails`` says about a cluster; EKS users give the real ARN."""

    name: str
    arn: str = ""
    vpc_id: str = ""
    status: str = "ACTIVE"
    tags: dict[str, str] = {}
    created_at: float | None = None

    @property
    def resolved_arn(self) -> str:
        return self.arn or f"urn:kubeguard:cluster:{self.name}"


class IntelSettings(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """Threat intelligence: list specs are ``PATH_OR_URL[:FORMAT]``."""

    threat_lists: list[str] = []
    #: Lists kept as known-malicious intelligence (``MaliciousIPCaller``), like the feeds ``intel update``
    #: caches; ``threat_lists`` are the operator's own (``MaliciousIPCaller.Custom``).
    malicious_lists: list[str] = []
    trusted_lists: list[str] = []
    tor_exits: list[str] = []
    use_default_feeds: bool = True
    cache_dir: str = ""
    geo_city_mmdb: str = ""
    geo_asn_mmdb: str = ""
    #: What ThreatIntelSet/IPSet locations given through the API may name: directories and https:// URL
    #: prefixes (``kubeguard.intel.locations``); empty means kubeguard's own lists folder and public https.
    allowed_locations: list[str] = []
    #: Let https:// list locations resolve to loopback, private or link-local addresses.
    allow_private_addresses: bool = False


class AnomalySettings(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    enabled: bool = True
    learning_days: float = 7.0
    min_principal_events: int = 50


#: Opt-in detection packs (``kubeguard.detectors.registry.PACKS``); named here so a config is checked on load.
DETECTION_PACKS = ("audit-trail",)


class DetectorSettings(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    #: Opt-in detection packs to run besides the default detectors: ``["audit-trail"]``.
    packs: list[str] = []

    def __post_init__(self) -> None:
        unknown = [p for p in self.packs if p not in DETECTION_PACKS]
        if unknown:
            raise ValueError(f"unknown detection pack {unknown[0]!r} (known: {', '.join(DETECTION_PACKS)})")


class Settings(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    account_id: str = "000000000000"
    region: str = "us-east-1"
    partition: str = "aws"
    detector_id: str = ""
    clusters: list[ClusterConfig] = []
    intel: IntelSettings = msgspec.field(default_factory=IntelSettings)
    anomaly: AnomalySettings = msgspec.field(default_factory=AnomalySettings)
    detectors: DetectorSettings = msgspec.field(default_factory=DetectorSettings)
    #: Service settings (``kubeguard serve``) kept as a table the service reads itself.
    serve: dict[str, object] = {}

    def __post_init__(self) -> None:
        if not self.detector_id:
            material = f"kubeguard:{self.account_id}:{self.region}".encode()
            self.detector_id = hashlib.sha256(material).hexdigest()[:32]

    def cluster(self, name: str) -> ClusterConfig:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        return ClusterConfig(name=name)


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or has fields we do not know."""


def load_settings(path: str | Path | None = None) -> Settings:
    if path is None:
        return Settings()
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"config file not found: {file}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: {error}") from error
    try:
        return msgspec.convert(raw, Settings)
    except msgspec.ValidationError as error:
        raise ConfigError(f"{file}: {error}") from error
