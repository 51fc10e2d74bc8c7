"""The Prefect client's transport resends 503s quickly and gives up after its attempts."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from engine.orchestrator.lock_retry import LockRetryTransport


class _Server(ThreadingHTTPServer):
    def __init__(self, unavailable: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.unavailable_left = unavailable
        self.bodies: list[bytes] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.unavailable_left > 0:
            self.server.unavailable_left -= 1
            self._answer(503, b'{"exception_message": "Service Unavailable"}')
        else:
            self._answer(201, b'{"status": "ACCEPT"}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Keep the test output free of request lines."""


def _serve(unavailable: int) -> Iterator[_Server]:
    server = _Server(unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def locked_twice() -> Iterator[_Server]:
    yield from _serve(unavailable=2)


@pytest.fixture
def locked_for_good() -> Iterator[_Server]:
    yield from _serve(unavailable=1000)


def _post(server: _Server, transport: LockRetryTransport) -> httpx.Response:
    with httpx.Client(transport=transport) as client:
        return client.post(f"http://127.0.0.1:{server.server_address[1]}/set_state", json={"state": "RUNNING"})


def test_a_503_is_resent_with_the_same_body_until_it_is_accepted(locked_twice: _Server) -> None:
    response = _post(locked_twice, LockRetryTransport(first_delay=0.001))
    assert response.status_code == 201
    assert response.json() == {"status": "ACCEPT"}
    assert locked_twice.bodies == [b'{"state":"RUNNING"}'] * 3


def test_after_its_attempts_the_503_goes_back_to_the_caller(locked_for_good: _Server) -> None:
    response = _post(locked_for_good, LockRetryTransport(attempts=4, first_delay=0.001))
    assert response.status_code == 503
    assert len(locked_for_good.bodies) == 4
