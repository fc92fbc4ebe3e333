"""Settings of the service itself: credentials, webhook limits and publishing sinks.

They come from the ``[serve]`` table of the configuration file (``Settings.serve``) and from the
environment, so secrets need not sit in a file:

- ``KUBEGUARD_ACCESS_KEYS="AKID1:secret1,AKID2:secret2"`` — SigV4 keys accepted by the API;
- ``KUBEGUARD_WEBHOOK_TOKENS="token1=cluster-a,token2="`` — webhook bearer tokens, each optionally naming
  the cluster its batches come from;
- ``KUBEGUARD_CONSOLE_PASSWORD`` — a password for the web console;
- ``KUBEGUARD_OIDC_CLIENT_SECRET`` — the console's client secret at its OpenID Connect provider.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec

from kubeguard.sinks.options import AnySinkOptions

MIB = 1024 * 1024


class ServeOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: access key id -> secret access key, for SigV4 on the API.
    access_keys: dict[str, str] = {}
    #: bearer token -> cluster name ("" means: the cluster comes from the URL path).
    webhook_tokens: dict[str, str] = {}
    #: Client certificate identity (``CN=name`` or a SAN as ``DNS:name``, ``URI:...``, ``IP:...``) -> cluster
    #: its batches come from. With entries here, a certificate that matches none is refused.
    client_certificates: dict[str, str] = {}
    #: Cluster name for webhook batches that name none.
    default_cluster: str = "default"
    max_body_bytes: int = 64 * MIB
    #: Bound on a gzip body once inflated, against decompression bombs.
    max_inflated_bytes: int = 256 * MIB
    #: Bound on the JSON objects of one batch (``kubeguard.api.ingest.limits``), against amplification.
    max_json_objects: int = 500_000
    #: Bound on the distinct clusters batches are accepted for.
    max_clusters: int = 1_000
    #: Seconds a webhook request waits for the store before answering 503 (the API server retries).
    store_timeout_seconds: float = 20.0
    #: How long drained batches stay in the spool (for replay and audit) before they are pruned.
    spool_retention_seconds: int = 24 * 3600
    sinks: list[AnySinkOptions] = []
    #: Where users reach the console (``https://kubeguard.example.com``): messages link to each finding there.
    public_url: str = ""
    #: Interval of S3 publishing destinations created through the API: seconds, so findings land within
    #: seconds; 0 follows the detector's ``findingPublishingFrequency`` as GuardDuty does (15 min to 6 h).
    publishing_interval_seconds: float = 5.0
    #: Cap on the bodies of drained batches kept for replay; the oldest go first beyond it.
    spool_retention_bytes: int = 1024 * MIB
    #: Backpressure: past this many acknowledged events (or body bytes) waiting for detection, the
    #: webhook answers 503 with ``Retry-After`` and the API server sends the batch again later.
    max_backlog_events: int = 200_000
    max_backlog_bytes: int = 512 * MIB
    #: The ``Retry-After`` the webhook sends with a 503 (seconds).
    retry_after_seconds: int = 5
    #: Keep the activity store (the console's profiles and graph) and for how long / how many roll-up rows.
    keep_history: bool = True
    history_days: float = 90.0
    history_max_rows: int = 20_000_000
    #: A password for the web console (besides API access keys); also ``KUBEGUARD_CONSOLE_PASSWORD``.
    console_password: str = ""
    #: How long a console login lasts.
    session_hours: float = 12.0
    #: Single sign-on to the console with an OpenID Connect provider (``kubeguard.api.console.oidc``): its
    #: issuer URL, the console's client id and secret there (also ``KUBEGUARD_OIDC_CLIENT_SECRET``), and who
    #: may sign in: addresses, ``@domain``, subjects, or ``*`` for anyone the provider signs in. The provider
    #: must know the redirect URI ``{public_url or the console's address}/console/oidc/callback``. Like the
    #: password, it signs in to a console that is not open (an open loopback listener needs no sign-in).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_allowed: list[str] = []

    def __post_init__(self) -> None:
        limits = (self.max_backlog_events, self.max_backlog_bytes, self.retry_after_seconds, self.spool_retention_bytes)
        if min(limits) <= 0:
            raise ValueError(
                "max_backlog_events, max_backlog_bytes, retry_after_seconds and spool_retention_bytes must be positive"
            )

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_keys or self.webhook_tokens)


def serve_options(section: Mapping[str, object]) -> ServeOptions:
    """The ``[serve]`` table of the configuration, with credentials from the environment added."""
    options = msgspec.convert(dict(section), ServeOptions)
    if options.public_url and not options.public_url.startswith(("http://", "https://")):
        raise ValueError("[serve] public_url must start with http:// or https://")
    options.access_keys = {**options.access_keys, **_pairs(os.environ.get("KUBEGUARD_ACCESS_KEYS", ""), ":")}
    options.webhook_tokens = {
        **options.webhook_tokens,
        **_pairs(os.environ.get("KUBEGUARD_WEBHOOK_TOKENS", ""), "="),
    }
    options.console_password = os.environ.get("KUBEGUARD_CONSOLE_PASSWORD", options.console_password)
    options.oidc_client_secret = os.environ.get("KUBEGUARD_OIDC_CLIENT_SECRET", options.oidc_client_secret)
    if options.oidc_issuer:
        _check_oidc(options)
    keyless = sorted(key for key, secret in options.access_keys.items() if not secret)
    if keyless:
        raise ValueError(f"access keys without a secret (write KEY:SECRET): {', '.join(keyless)}")
    placeholders = [
        name
        for name, value in (*options.access_keys.items(), *((token, "") for token in options.webhook_tokens))
        if _is_placeholder(name) or _is_placeholder(value)
    ]
    if placeholders:
        raise ValueError(
            "the example configuration's placeholder credentials are still there "
            f"({', '.join(sorted(placeholders))}); replace them with your own random keys and tokens"
        )
    return options


def _check_oidc(options: ServeOptions) -> None:
    if not options.oidc_issuer.startswith("https://") and not _is_loopback_url(options.oidc_issuer):
        raise ValueError("[serve] oidc_issuer must be an https:// URL (http:// only on loopback, for testing)")
    if not options.oidc_client_id or not options.oidc_client_secret:
        raise ValueError("[serve] oidc_issuer needs oidc_client_id and oidc_client_secret "
                         "(or KUBEGUARD_OIDC_CLIENT_SECRET)")
    if not options.oidc_allowed:
        raise ValueError('[serve] oidc_allowed must say who may sign in: addresses, "@domain", subjects, '
                         'or "*" for anyone the provider signs in')


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_loopback_url(url: str) -> bool:
    return url.startswith("http://") and is_loopback(urlsplit(url).hostname or "")


#: Markers of the credentials shipped in deploy/kubeguard.toml, which anyone can read.
PLACEHOLDER_MARKERS = ("REPLACE-WITH", "AKIDKUBEGUARDEXAMPLE")


def _is_placeholder(value: str) -> bool:
    return any(marker in value.upper() for marker in PLACEHOLDER_MARKERS)


def _pairs(text: str, separator: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, _, value = item.strip().partition(separator)
        if key:
            pairs[key] = value
    return pairs
