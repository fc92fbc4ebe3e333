"""The sinks' tests run a real ``kubeguard serve``, with the API tests' fixtures."""

from api.conftest import db_url, make_server  # noqa: F401 - pytest finds fixtures by name
