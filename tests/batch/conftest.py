"""The store and server fixtures of the API tests, for the batch tests too."""

from api.conftest import db_url, make_server  # noqa: F401 - pytest fixtures, used by name
