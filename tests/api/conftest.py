"""The real API over real HTTP: uvicorn in a thread of the test process, one per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.engine.events.test_webhooks import (  # noqa: F401 - fixtures shared with tests/engine/events, found by name
    configure_webhooks,
    start_receiver,
)
from tests.factories import make_user
from tests.served_app import ServedApp, served_app, wait_for

ApiServer = ServedApp


@pytest.fixture(scope="session")
def api_server(database_url: str) -> Iterator[ApiServer]:
    with served_app(ready_path="/health") as running:
        yield running


@pytest.fixture(autouse=True)
def _server_settles(api_server: ApiServer) -> Iterator[None]:
    """Let each test's background outbox deliveries finish before the next test empties the database."""
    yield
    wait_for(api_server.is_idle, timeout=30, what="the API's in-flight requests")


@dataclass
class Caller:
    """A user calling the API with their bearer token."""

    name: str
    roles: tuple[str, ...]
    token: str
    http: httpx.Client = field(repr=False)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)


def client(api_server: ApiServer, token: str | None = None) -> httpx.Client:
    """Return an HTTP client for the server, with a bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Client(base_url=api_server.url, headers=headers, timeout=30)


@pytest.fixture
def login(api_server: ApiServer, clean_db: str) -> Iterator[Callable[..., Caller]]:
    """Create users on an empty database and give each an HTTP client: login("warehouse", name="wu")."""
    callers: list[Caller] = []

    def make(*roles: str, name: str | None = None) -> Caller:
        principal, token = make_user(name=name, roles=roles)
        caller = Caller(name=principal.name, roles=roles, token=token, http=client(api_server, token))
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.http.close()


@pytest.fixture
def anonymous(api_server: ApiServer) -> Iterator[httpx.Client]:
    """An HTTP client without credentials."""
    with client(api_server) as http:
        yield http


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """Assert the one error body shape and return the body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {"error", "detail", "fields"}, body
    if "fields" in body:
        assert all(set(f) == {"field", "rule", "message"} for f in body["fields"]), body
    return body


def field_names(body: dict[str, Any]) -> list[str]:
    """Return the field names of a 422 body, in order."""
    return [f["field"] for f in body["fields"]]
