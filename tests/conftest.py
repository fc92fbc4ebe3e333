"""Fixtures shared by every test package: where the test data lives, and a way to build audit events.

``tests/data/`` holds what this project recorded itself (the lab cluster's audit log, as the log backend and
as the webhook backend wrote it), so every test that needs it runs from a clone alone. The Falco fixtures
are not ours to ship: they are read from ``shared/`` beside the repository when it is there, and the tests
over them skip with the reason otherwise, or fail when ``KUBEGUARD_REQUIRE_CORPUS=1`` says the run must
include them. Those tests carry the ``corpus`` marker, so ``pytest -m corpus`` runs just them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kubeguard.audit.event import AuditEvent

DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(os.environ.get("KUBEGUARD_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
#: Fixtures that read ``shared/``; a test that uses one is marked ``corpus``.
CORPUS_FIXTURES = frozenset({"shared_dir", "falco_dir"})


def _require(path: Path) -> Path:
    if not path.exists():
        message = f"corpus not found at {path} (expected shared/ beside the repository)"
        if os.environ.get("KUBEGUARD_REQUIRE_CORPUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CORPUS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.corpus)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def falco_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "corpus" / "falco")


@pytest.fixture(scope="session")
def lab_dir() -> Path:
    """The lab cluster's recording (``tests/data/lab-scenario/README.md``), kept in the repository."""
    return DATA / "lab-scenario"


def build_event(document: dict[str, Any], cluster: str = "test-cluster") -> AuditEvent:
    """An AuditEvent decoded from a JSON-shaped dict, exactly as the decoder would produce it."""
    event = msgspec.json.decode(msgspec.json.encode(document), type=AuditEvent)
    event.cluster = cluster
    return event


@pytest.fixture
def make_event() -> Callable[..., AuditEvent]:
    return build_event
