"""Start, watch and stop the processes that make up ecomflow: Prefect server, API, worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ecomflow.engine.config import Settings


def prefect_env(settings: Settings) -> dict[str, str]:
    """Return the environment every ecomflow process needs to reach the same Prefect server."""
    return {
        "PREFECT_API_URL": settings.resolved_prefect_api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_HOME": str((settings.data_dir / "prefect").resolve()),
    }


@dataclass
class Service:
    """One child process in its own process group, so stopping it leaves no orphans."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    health_url: str | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the process with the given environment added to ours."""
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float) -> None:
        """Wait until the health URL answers 200; raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}; see {self.log_path}")
            if self.health_url is None:
                return
            try:
                if httpx.get(self.health_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} did not become healthy within {timeout:.0f}s; see {self.log_path}")

    def running(self) -> bool:
        """Return whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after the timeout."""
        if not self.running():
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """Kill the process group at once (kill -9), as a crash would."""
        if self.running():
            self._signal(signal.SIGKILL)
            self.process.wait(5)

    def _signal(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def prefect_server(settings: Settings, *, log_dir: Path) -> Service:
    """Return the embedded Prefect server (SQLite in the data dir, UI included)."""
    port = str(settings.prefect_port)
    return Service(
        name="prefect-server",
        argv=[sys.executable, "-m", "ecomflow.prefect_server", "--host", "127.0.0.1", "--port", port],
        env={**prefect_env(settings), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"},
        health_url=f"http://127.0.0.1:{port}/api/health",
        log_path=log_dir / "prefect-server.log",
    )


def api_server(settings: Settings, *, log_dir: Path, env: Mapping[str, str]) -> Service:
    """Return the API process."""
    return Service(
        name="api",
        argv=[sys.executable, "-m", "ecomflow.cli", "api"],
        env={**prefect_env(settings), **env},
        health_url=f"http://{settings.api_host}:{settings.api_port}/health",
        log_path=log_dir / "api.log",
    )


def flow_worker(settings: Settings, *, log_dir: Path, env: Mapping[str, str]) -> Service:
    """Return the flow worker process (runs, dispatcher, sweeper)."""
    return Service(
        name="worker",
        argv=[sys.executable, "-m", "ecomflow.cli", "worker"],
        env={**prefect_env(settings), **env},
        log_path=log_dir / "worker.log",
    )
