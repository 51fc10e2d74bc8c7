"""The faults of a chaos run: one part at a time killed and restarted, and any part found dead brought back.

At seeded random intervals (or at the times of a fixed plan) a thread SIGKILLs one of the API, the
flow worker and the Prefect server and starts it again as a supervisor would; on PostgreSQL it can
restart the cluster itself. Each fault is noted with when it happened and how long the part took
to come back.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.chaos_staff import retry_db
from bench.harness.stack import WORKER_READY, BenchStack


@dataclass
class Kill:
    """One fault injected: what, when (s after the chaos started), and how long until it was back."""

    what: str
    at_s: float
    how: str
    back_after_s: float | None = None
    note: str = ""
    clock: str = field(default_factory=lambda: datetime.now().astimezone().strftime("%H:%M:%S"))

    @property
    def injected(self) -> bool:
        """False for a part found dead that the chaos did not kill."""
        return not self.how.startswith("found dead")


def postgres_version() -> str:
    """Return the one PostgreSQL cluster version installed (`ls /etc/postgresql`)."""
    return sorted(os.listdir("/etc/postgresql"))[-1]


def wait_for_database(database_url: str, timeout: float = 120) -> None:
    """Wait until the database accepts a query again."""
    from sqlalchemy import text

    from ecomflow.engine.db.sessions import session_scope

    def probe() -> None:
        with session_scope(database_url) as session:
            session.execute(text("SELECT 1"))

    retry_db(probe, what="reaching the database", patience=timeout)


class Chaos(threading.Thread):
    """Kill and restart one part at a time, at seeded random intervals or at the times of a fixed plan."""

    def __init__(
        self,
        stack: BenchStack,
        *,
        seed: int,
        duration: float,
        kill_every: tuple[float, float],
        targets: Sequence[str],
        plan: Sequence[tuple[float, str]] | None = None,
    ) -> None:
        super().__init__(name="chaos", daemon=True)
        self.stack, self.duration, self.kill_every, self.plan = stack, duration, kill_every, plan
        self.rng = random.Random(f"{seed}/chaos")
        self.targets = list(targets)
        self.kills: list[Kill] = []
        self.began = 0.0
        self.error: BaseException | None = None

    def _schedule(self) -> Iterable[tuple[float, str]]:
        """Yield (seconds after the start, part) of the fixed plan, or random ones: each part once a round."""
        if self.plan is not None:
            yield from self.plan
            return
        bag: list[str] = []
        while True:
            # The interval counts from the moment the previous part was back, so kills never pile up.
            at = time.monotonic() - self.began + self.rng.uniform(*self.kill_every)
            if not bag:  # every part once per round, in a seeded order: each is hit, none twice in a row often
                bag = self.rng.sample(self.targets, len(self.targets))
            yield at, bag.pop()

    def run(self) -> None:
        """Inject the faults of the schedule until the duration is over; keep the error that stopped it, if any."""
        self.began = time.monotonic()
        try:
            for at, what in self._schedule():
                if at >= self.duration:
                    break
                self._sleep_watching(self.began + at)
                self.kills.append(self._hit(what))
            self._sleep_watching(self.began + self.duration)
        except BaseException as exc:
            self.error = exc

    def _sleep_watching(self, until: float) -> None:
        """Sleep until the time, restarting (and recording) any part found dead that we did not kill."""
        while (left := until - time.monotonic()) > 0:
            for name, service in self.stack.services().items():
                if not service.running():
                    kill = Kill(
                        what=name,
                        at_s=round(time.monotonic() - self.began, 1),
                        how=f"found dead (exit {service.process.returncode})",
                    )
                    found = time.monotonic()
                    kill.note = self._bring_back(
                        name, service, ready_lines=_count_lines(service.log_path, WORKER_READY)
                    )
                    kill.back_after_s = round(time.monotonic() - found, 1)
                    print(
                        f"[chaos] {kill.at_s:6.1f}s {name}: {kill.how}, back after {kill.back_after_s}s {kill.note}",
                        file=sys.stderr,
                    )
                    self.kills.append(kill)
            time.sleep(min(0.5, max(left, 0.0)))

    @staticmethod
    def _bring_back(name: str, service: Any, *, ready_lines: int) -> str:
        """Restart a part and, for the worker, wait until it registered its deployments."""
        note = restart(service)
        return note + wait_worker_ready(service, ready_lines) if name == "worker" else note

    def _hit(self, what: str) -> Kill:
        """Kill one part (or restart PostgreSQL), bring it back and return what happened."""
        kill = Kill(what=what, at_s=round(time.monotonic() - self.began, 1), how="SIGKILL, restart")
        hit = time.monotonic()
        if what == "postgresql":
            kill.how = "pg_ctlcluster restart"
            done = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", postgres_version(), "main", "restart"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                kill.note = f"pg_ctlcluster exited {done.returncode}: {done.stderr.strip()[:200]}"
            wait_for_database(self.stack.database_url)
        else:
            service = self.stack.services()[what]
            ready_lines = _count_lines(service.log_path, WORKER_READY)
            if not service.running():
                kill.note = f"(was already dead, exit {service.process.returncode}) "
            service.kill()
            time.sleep(self.rng.uniform(0.3, 1.5))  # a supervisor notices and restarts it
            kill.note += self._bring_back(what, service, ready_lines=ready_lines)
        kill.back_after_s = round(time.monotonic() - hit, 1)
        print(
            f"[chaos] {kill.at_s:6.1f}s {what}: {kill.how}, back after {kill.back_after_s}s {kill.note}",
            file=sys.stderr,
        )
        return kill


def _count_lines(path: Any, text: str) -> int:
    """Count the lines of a log that hold the text (0 when the log is not there yet)."""
    try:
        return path.read_text(errors="replace").count(text)
    except OSError:
        return 0


def wait_worker_ready(service: Any, before: int, timeout: float = 120) -> str:
    """Wait until the restarted worker logs that it registered its deployments (and so polls runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count_lines(service.log_path, WORKER_READY) > before:
            return ""
        time.sleep(0.2)
    return f"(no '{WORKER_READY}' line within {timeout:.0f}s)"


def restart(service: Any, *, attempts: int = 3) -> str:
    """Start a service that is down and wait until it answers; return a note when it took more than one try."""
    for attempt in range(1, attempts + 1):
        if not service.running():
            service.start()
        try:
            service.wait_healthy(timeout=180)
            return "" if attempt == 1 else f"(healthy on start attempt {attempt})"
        except (RuntimeError, TimeoutError) as exc:
            print(f"[chaos] start attempt {attempt} of {service.name} failed: {exc}", file=sys.stderr)
            service.kill()
            if attempt == attempts:
                raise RuntimeError(f"{service.name} did not come back: {exc}") from exc
    return ""
