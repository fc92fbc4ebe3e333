from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from store.databases import DIALECTS, database_url

from kubeguard.store.database import open_engine


@pytest.fixture(params=DIALECTS)
def engine(request, tmp_path) -> Iterator[Engine]:
    with database_url(request.param, tmp_path) as url:
        engine = open_engine(url)
        yield engine
        engine.dispose()
