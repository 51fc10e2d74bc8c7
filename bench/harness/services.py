"""Child processes of a benchmark: free loopback ports, an environment of their own, stopping them together."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ecomflow.services import Service

REPO_ROOT = Path(__file__).resolve().parents[2]
# Every process of a stack runs offline: Prefect's telemetry only logs failures there.
QUIET_PREFECT_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
# Environment variables of ours that must not leak from the caller into the stack's processes.
_OWN_PREFIXES = ("ECOMFLOW_", "PREFECT_")


def free_port() -> int:
    """Return a TCP port on loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class IsolatedService(Service):
    """A Service whose environment is ours only: no ECOMFLOW_*/PREFECT_* leaks from the caller."""

    def start(self) -> None:
        """Start the process in the repo root with the caller's environment minus our own settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES) and k != "DO_NOT_TRACK"}
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.argv,
            env={**base, **self.env},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            cwd=str(REPO_ROOT),
        )
        if output:
            output.close()


def check_alive(services: Mapping[str, Service]) -> None:
    """Raise if any of the services has exited, naming it and its log."""
    for name, service in services.items():
        if not service.running():
            raise RuntimeError(f"{name} exited with code {service.process.returncode}; see {service.log_path}")


class ProcessGroup:
    """What a running stack shares: a data dir whose logs/ its processes write, and processes to watch."""

    data_dir: Path

    @property
    def log_dir(self) -> Path:
        """Return where the processes write their logs."""
        return self.data_dir / "logs"

    def services(self) -> Mapping[str, Service]:
        """Return the stack's processes by name."""
        raise NotImplementedError

    def check_alive(self) -> None:
        """Raise if a process of the stack has exited."""
        check_alive(self.services())


def stop_all(services: Iterable[Service], *, timeout: float = 20) -> None:
    """Stop the services in reverse start order; a failure to stop one is reported and the rest still stop."""
    for service in reversed(list(services)):
        try:
            service.stop(timeout=timeout)
        except Exception as exc:
            print(f"[bench] stopping {service.name} failed: {exc}", file=sys.stderr)
