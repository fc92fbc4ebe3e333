"""Optional dependencies: PostgreSQL, AWS and NATS support install as extras, and say so when missing.

``pip install kubeguard`` is enough for ``scan`` and for ``serve`` on SQLite. PostgreSQL (``psycopg``),
the AWS SDK (``boto3``: ``findings --url``, CloudWatch sources, AWS sinks) and NATS (``nats-py``: the bus
and workers) come with ``kubeguard[postgres]``, ``kubeguard[aws]`` and ``kubeguard[nats]``, or all of them
with ``kubeguard[all]``. Code that needs one calls :func:`require` (or catches :class:`MissingExtra`) so
the user reads which extra to install instead of a ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: module -> (extra, what it is for)
EXTRAS = {
    "psycopg": ("postgres", "PostgreSQL"),
    "boto3": ("aws", "AWS"),
    "botocore": ("aws", "AWS"),
    "nats": ("nats", "NATS JetStream"),
    "google": ("gcp", "Google Cloud (Pub/Sub sources outside the emulator)"),
    "jwt": ("oidc", "Single sign-on to the console (OpenID Connect)"),
}


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, module: str) -> None:
        extra, purpose = EXTRAS.get(module, (module, module))
        super().__init__(
            f"{purpose} support is not installed (module {module!r}); install it with: "
            f"pip install 'kubeguard[{extra}]'"
        )
        self.module = module


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == module.split(".")[0]:
            raise MissingExtra(module.split(".")[0]) from exc
        raise


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The :class:`MissingExtra` for an import that failed on an optional dependency, else None."""
    root = (exc.name or "").split(".")[0]
    return MissingExtra(root) if root in EXTRAS else None
