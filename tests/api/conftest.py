"""The real API over real HTTP: uvicorn in a thread of the test process, one per session."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from tests.factories import make_user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll until probe() is true; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class ApiServer:
    """The running server and its base URL."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def is_idle(self) -> bool:
        """Return whether no request is in flight (a request's background delivery counts as in flight)."""
        return not self.server.server_state.tasks


def _answers_health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def api_server(database_url: str) -> Iterator[ApiServer]:
    port = free_port()
    config = uvicorn.Config("api.app:create_app", factory=True, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    running = ApiServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread)
    try:
        wait_for(lambda: not thread.is_alive() or _answers_health(running.url), timeout=60, what="the API's /health")
        assert thread.is_alive(), "the API server thread died while starting"
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=30)


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
