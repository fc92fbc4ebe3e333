from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store.databases import database_url

from bus.natsserver import private_nats


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with private_nats(tmp_path / "jetstream") as url:
        yield url


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with database_url("postgresql", tmp_path) as url:
        yield url
