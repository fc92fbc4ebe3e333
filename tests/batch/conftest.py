from collections.abc import Iterator

import pytest
from store.databases import DIALECTS, database_url


@pytest.fixture(params=DIALECTS)
def db_url(request, tmp_path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url
