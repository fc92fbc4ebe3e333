"""Fixtures shared by every test package: where the corpus lives, and a way to build audit events.

CI clones the repository with ``shared/`` as a sibling of the clone, so the corpus is found relative to
the repository root. Without it the corpus tests skip, unless ``KUBEGUARD_REQUIRE_SERVICES=1`` says the
run must be complete, in which case they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kubeguard.audit.event import AuditEvent

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _require(path: Path) -> Path:
    if not path.exists():
        message = f"corpus not found at {path} (expected shared/ beside the repository)"
        if os.environ.get("KUBEGUARD_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def falco_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "corpus" / "falco")


@pytest.fixture(scope="session")
def lab_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "corpus" / "lab-scenario")


def build_event(document: dict[str, Any], cluster: str = "test-cluster") -> AuditEvent:
    """An AuditEvent decoded from a JSON-shaped dict, exactly as the decoder would produce it."""
    event = msgspec.json.decode(msgspec.json.encode(document), type=AuditEvent)
    event.cluster = cluster
    return event


@pytest.fixture
def make_event() -> Callable[..., AuditEvent]:
    return build_event
