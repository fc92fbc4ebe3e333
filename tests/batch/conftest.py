from collections.abc import Callable, Iterator

import pytest
from api.server import Server
from store.databases import DIALECTS, database_url


@pytest.fixture(params=DIALECTS)
def db_url(request, tmp_path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def make_server(db_url, tmp_path) -> Iterator[Callable[..., Server]]:
    """Real ``kubeguard serve`` subprocesses on ``db_url``, stopped after the test."""
    servers: list[Server] = []

    def make(config: str = "", env: dict[str, str] | None = None) -> Server:
        server = Server(db_url, tmp_path, config, env)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
