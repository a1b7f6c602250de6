"""These tests drive the service module through the HTTP API, with the API tests' fixtures."""

from tests.api.conftest import (  # noqa: F401 (fixtures)
    arrivals,
    client,
    officer,
    scheduler_settled,
    settle,
    started,
    subscribe,
    token_for,
)
