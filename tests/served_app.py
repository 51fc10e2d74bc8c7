"""The app served by uvicorn in a thread of the test process, for tests that speak real HTTP to it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn


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
class ServedApp:
    """The running server and its base URL."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def is_idle(self) -> bool:
        """Return whether no request is in flight (a request's background delivery counts as in flight)."""
        return not self.server.server_state.tasks


@contextmanager
def served_app(*, ready_path: str) -> Iterator[ServedApp]:
    """Serve the app on a free port until the block ends; ready once GET ready_path answers 200."""
    port = free_port()
    config = uvicorn.Config(
        "ecomflow.api.app:create_app", factory=True, host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="served-app", daemon=True)
    thread.start()
    running = ServedApp(url=f"http://127.0.0.1:{port}", server=server, thread=thread)

    def answers() -> bool:
        try:
            return httpx.get(f"{running.url}{ready_path}", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(lambda: not thread.is_alive() or answers(), timeout=60, what=f"GET {ready_path}")
        assert thread.is_alive(), "the server thread died while starting"
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=30)
