from collections.abc import Callable, Iterator

import boto3
import pytest
from botocore.config import Config
from store.databases import DIALECTS, database_url

from api.server import Server


@pytest.fixture(params=DIALECTS)
def db_url(request, tmp_path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def make_server(db_url, tmp_path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(config: str = "", env: dict[str, str] | None = None) -> Server:
        server = Server(db_url, tmp_path, config, env)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server) -> Server:
    return make_server()


def guardduty_client(url: str, key: str = "AKIDEXAMPLE", secret: str = "secret"):
    return boto3.client(
        "guardduty",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def gd(server):
    return guardduty_client(server.url)
