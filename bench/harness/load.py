"""People working flat out against a system, and the figures of the measured window.

K simulated staff each poll an inbox, take one of the oldest items and complete it; a feeder keeps
`in_flight` instances active; an observer notes, on one clock, when each waiting point became
visible and when each instance ended. A human step is done when the next waiting point of its
instance is visible or the instance ended. The system is ours (an isolated stack, bench.throughput)
or a bare Prefect served deployment (bench.bare_prefect): both implement System and Desk.
"""

from __future__ import annotations

import random
import resource
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.harness.profiles import finish_profiles, prefect_calls, start_profiles
from bench.harness.sampling import cpu_seconds_by_name, postgres_cpu_seconds
from bench.harness.timing import summarize

ROLE_CYCLE = ("customer_service", "warehouse", "operations")
DAMAGED_EVERY = 4  # one return in DAMAGED_EVERY is inspected damaged: operations approves its deduction


def staff_roles(count: int) -> list[str]:
    """Return the role of each of `count` staff: customer service, warehouse, operations, and again."""
    return [ROLE_CYCLE[i % len(ROLE_CYCLE)] for i in range(count)]


def is_damaged(instance: str, roles: Iterable[str]) -> bool:
    """Whether this return is inspected damaged (only when someone from operations can approve it)."""
    return "operations" in roles and zlib.crc32(instance.encode()) % DAMAGED_EVERY == 0


# --------------------------------------------------------------------------- what happened, on one clock


@dataclass(frozen=True)
class Item:
    """A waiting point a person can act on: a task (ours) or a paused run's key (bare Prefect)."""

    instance: str
    point: str
    process: str
    step: str


@dataclass(frozen=True)
class Completion:
    """A complete the system accepted: when it was sent and when it was answered."""

    instance: str
    point: str
    step: str
    sent: float
    accepted: float


@dataclass
class Recorder:
    """What staff, feeder and observer did and saw; every time is time.monotonic()."""

    completions: list[Completion] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    ended: dict[str, tuple[float, str]] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, kind: str, status: int, ok: bool, reason: str = "") -> bool:
        """Count a request of the harness, and a refusal by its status and reason; return ok."""
        with self.lock:
            self.calls[kind] += 1
            if not ok:
                self.refused[f"{kind} {status}{f' {reason}' if reason else ''}"] += 1
        return ok

    def error(self, text: str) -> None:
        """Keep the first 20 errors the harness met."""
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(text[:300])

    def observe(self, points: Iterable[tuple[str, str]], ends: Iterable[tuple[str, str]], now: float) -> None:
        """Note when each waiting point and each instance's end was first seen."""
        with self.lock:
            for key in points:
                self.seen.setdefault(key, now)
            for instance, state in ends:
                self.ended.setdefault(instance, (now, state))

    def in_flight(self) -> int:
        """Count the instances started and not yet seen ended."""
        with self.lock:
            return len(self.started) - sum(1 for i in self.started if i in self.ended)


class System(Protocol):
    """One system under load: ours (an isolated ecomflow stack) or a bare Prefect served deployment."""

    name: str
    staff_use_prefect: bool  # whether the harness's own requests go to the Prefect server (bare) or to our API

    def desks(self, recorder: Recorder) -> list[Desk]: ...
    def start_one(self, number: int, recorder: Recorder) -> str: ...
    def probe(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]: ...
    def pipeline(self) -> dict[str, int]: ...
    def services(self) -> dict[str, int]: ...
    def prefect_log(self) -> Path: ...
    def check_alive(self) -> None: ...

    @property
    def uses_postgres(self) -> bool: ...  # its CPU is then measured too


class Desk(Protocol):
    """One person's view: an inbox, taking an item, completing it."""

    def inbox(self) -> list[Item]: ...
    def take(self, item: Item) -> bool: ...
    def complete(self, item: Item) -> bool: ...


class StackSystem:
    """What the load reads off the processes a system runs on.

    BenchStack or BareStack: services, log_dir, check_alive.
    """

    stack: Any

    def services(self) -> dict[str, int]:
        """Return the pid of each process of the system."""
        return {name: service.process.pid for name, service in self.stack.services().items()}

    @property
    def uses_postgres(self) -> bool:
        """Whether a database of the system's stack is on PostgreSQL (its CPU is then measured too)."""
        return self.stack.uses_postgres

    def prefect_log(self) -> Path:
        """Return the Prefect server's log (its access log counts the Prefect API calls)."""
        return self.stack.log_dir / "prefect-server.log"

    def check_alive(self) -> None:
        """Raise if a process of the system has exited."""
        self.stack.check_alive()


# --------------------------------------------------------------------------- driving


def _work(desk: Desk, recorder: Recorder, stop: threading.Event, *, poll: float, seed: int) -> None:
    """Take and complete items as fast as the system lets; poll the inbox every `poll` s when it is empty."""
    rng, skipped = random.Random(seed), set()
    while not stop.is_set():
        try:
            items = [i for i in desk.inbox() if i.point not in skipped]
            if not items:
                stop.wait(poll)
                continue
            item = rng.choice(items[:3])  # the oldest few, so colleagues of one role rarely collide
            if not desk.take(item):
                skipped.add(item.point)
                continue
            sent = time.monotonic()
            if desk.complete(item):
                with recorder.lock:
                    recorder.completions.append(
                        Completion(item.instance, item.point, item.step, sent, time.monotonic())
                    )
            else:
                stop.wait(poll)
        except Exception as exc:
            recorder.error(f"staff: {exc!r}")
            stop.wait(poll)


def _feed(system: System, recorder: Recorder, stop: threading.Event, *, in_flight: int) -> None:
    """Start instances whenever fewer than `in_flight` are active."""
    number = 0
    while not stop.is_set():
        if recorder.in_flight() >= in_flight:
            stop.wait(0.05)
            continue
        try:
            instance = system.start_one(number, recorder)
            with recorder.lock:
                recorder.started[instance] = time.monotonic()
        except Exception as exc:
            recorder.error(f"feeder: {exc!r}")
            stop.wait(0.5)
        number += 1


def _observe(system: System, recorder: Recorder, stop: threading.Event, *, interval: float) -> None:
    """Read what is visible and what ended every `interval` s, straight from the system's database."""
    while not stop.is_set():
        try:
            points, ends = system.probe()
            recorder.observe(points, ends, time.monotonic())
        except Exception as exc:
            recorder.error(f"observer: {exc!r}")
        stop.wait(interval)


def _snapshot(system: System, recorder: Recorder) -> dict[str, Any]:
    """Return the counters at one edge of the window: time, calls, CPU, the access log's size, the pipeline."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log = system.prefect_log()
    with recorder.lock:
        calls = Counter(recorder.calls)
    return {
        "at": time.monotonic(),
        "calls": calls,
        "cpu_s": cpu_seconds_by_name(system.services()),
        "postgres_cpu_s": postgres_cpu_seconds() if system.uses_postgres else None,
        "harness_cpu_s": usage.ru_utime + usage.ru_stime,
        "log_offset": log.stat().st_size if log.exists() else 0,
        "pipeline": system.pipeline(),
    }


def _sleep_until(deadline: float, system: System) -> None:
    """Sleep until the deadline, checking every second that the system's processes are alive."""
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        system.check_alive()


def measure(
    system: System,
    *,
    warmup: float,
    duration: float,
    in_flight: int,
    poll: float = 0.5,
    interval: float = 0.1,
    drain: float = 30,
    min_steps: int = 0,
    profile: bool = True,
    profile_rate: int = 10,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Load the system for `duration` s, measure from `warmup` on, let the last steps finish; return the figures.

    With min_steps, staff keep working after the window (at most `drain` s more) until they have completed that
    many steps: on a loaded machine a side may show its first task only after a short window. The window's
    figures do not change; the whole run's totals (steps_done_total, completes_total) count them.
    """
    recorder, stop_work, stop_observer = Recorder(), threading.Event(), threading.Event()
    observer = threading.Thread(
        target=_observe, args=(system, recorder, stop_observer), kwargs={"interval": interval}, daemon=True
    )
    workers = [
        threading.Thread(target=_feed, args=(system, recorder, stop_work), kwargs={"in_flight": in_flight}, daemon=True)
    ]
    workers += [
        threading.Thread(target=_work, args=(desk, recorder, stop_work), kwargs={"poll": poll, "seed": n}, daemon=True)
        for n, desk in enumerate(system.desks(recorder))
    ]
    profilers: dict[str, Any] = {}
    began = time.monotonic()
    observer.start()
    for thread in workers:
        thread.start()
    try:
        _sleep_until(began + warmup, system)
        first = _snapshot(system, recorder)
        profilers = (
            start_profiles(system.services(), seconds=duration - warmup, rate=profile_rate, out_dir=profile_dir)
            if profile and profile_dir
            else {}
        )
        _sleep_until(began + duration, system)
        last = _snapshot(system, recorder)
        work_until = time.monotonic() + drain
        while len(recorder.completions) < min_steps and time.monotonic() < work_until:
            time.sleep(0.5)
    finally:
        stop_work.set()
        for thread in workers:
            thread.join(timeout=35)
    drain_until = time.monotonic() + drain
    while time.monotonic() < drain_until and None in done_times(recorder).values():
        time.sleep(0.5)
    stop_observer.set()
    observer.join(timeout=10)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    profiles = finish_profiles(profilers)  # reaps the profilers: their CPU is the children's usage since
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = analyse(recorder, w0=first["at"], w1=last["at"])
    figures.update(
        {
            "cpu_s": {name: round(last["cpu_s"][name] - first["cpu_s"][name], 2) for name in last["cpu_s"]},
            "harness_cpu_s": round(last["harness_cpu_s"] - first["harness_cpu_s"], 2),
            "postgres_cpu_s": (
                round(last["postgres_cpu_s"] - first["postgres_cpu_s"], 2)
                if None not in (first["postgres_cpu_s"], last["postgres_cpu_s"])
                else None
            ),
            "pipeline": {"start": first["pipeline"], "end": last["pipeline"]},
            "prefect_calls": prefect_calls(system.prefect_log(), first["log_offset"], last["log_offset"]),
            "harness_calls": dict(last["calls"] - first["calls"]),
            "refused": dict(recorder.refused),
            "errors": recorder.errors,
            "profiles": profiles,
            "profiler_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "settings": {
                "staff": len(workers) - 1,
                "in_flight": in_flight,
                "poll_s": poll,
                "observe_s": interval,
                "warmup_s": warmup,
                "duration_s": duration,
                "profile_rate": profile_rate if profiles else None,
            },
        }
    )
    figures["prefect_calls_by_harness"] = sum(figures["harness_calls"].values()) if system.staff_use_prefect else 0
    steps = figures["steps_done"]
    figures["cpu_s_per_step"] = {name: round(v / steps, 3) if steps else None for name, v in figures["cpu_s"].items()}
    return figures


# --------------------------------------------------------------------------- analysis


def done_times(recorder: Recorder) -> dict[Completion, float | None]:
    """For each completion: when the instance's next waiting point was first seen, or it ended; None if neither yet."""
    with recorder.lock:
        completions, seen, ended = list(recorder.completions), dict(recorder.seen), dict(recorder.ended)
    by_instance: dict[str, list[tuple[float, str]]] = {}
    for (instance, point), t in seen.items():
        by_instance.setdefault(instance, []).append((t, point))
    done: dict[Completion, float | None] = {}
    for c in completions:
        # The point itself may be seen only after its complete was sent (the observer polls): skip it.
        times = [t for t, point in by_instance.get(c.instance, ()) if point != c.point and t > c.sent]
        if c.instance in ended and ended[c.instance][0] > c.sent:
            times.append(ended[c.instance][0])
        done[c] = min(times) if times else None
    return done


def analyse(recorder: Recorder, *, w0: float, w1: float) -> dict[str, Any]:
    """Turn the recorded events into the figures of the window [w0, w1]."""
    window = w1 - w0
    done = done_times(recorder)
    in_window = [c for c in recorder.completions if w0 <= c.accepted <= w1]
    turnaround = [done[c] - c.accepted for c in in_window if done[c] is not None]

    def pipeline_at(t: float) -> int:
        return sum(1 for c, d in done.items() if c.accepted <= t and (d is None or d > t))

    def waiting_at(t: float) -> int:
        taken = {c.point: c.sent for c in recorder.completions}
        return sum(
            1
            for (instance, point), seen in recorder.seen.items()
            if seen <= t and taken.get(point, float("inf")) > t and recorder.ended.get(instance, (float("inf"),))[0] > t
        )

    first_point: dict[str, float] = {}
    for (instance, _), seen in recorder.seen.items():
        first_point[instance] = min(seen, first_point.get(instance, seen))
    starts = [first_point[i] - t for i, t in recorder.started.items() if w0 <= t <= w1 and i in first_point]
    steps = sum(1 for d in done.values() if d is not None and w0 <= d <= w1)
    return {
        "window_s": round(window, 1),
        "steps_done": steps,
        "steps_done_total": sum(1 for d in done.values() if d is not None),
        "completes_total": len(done),
        "steps_per_s": round(steps / window, 3),
        "accepted": len(in_window),
        "accepted_per_s": round(len(in_window) / window, 3),
        "turnaround": summarize(turnaround),
        "turnaround_by_step": {
            step: summarize([done[c] - c.accepted for c in in_window if c.step == step and done[c] is not None])
            for step in sorted({c.step for c in in_window})
        },
        "not_done_after_drain": sum(1 for c in in_window if done[c] is None),
        "in_pipeline": {"start": pipeline_at(w0), "end": pipeline_at(w1)},
        "waiting_in_inbox": {"start": waiting_at(w0), "end": waiting_at(w1)},
        "started": sum(1 for t in recorder.started.values() if w0 <= t <= w1),
        "ended": Counter(state for t, state in recorder.ended.values() if w0 <= t <= w1),
        "start_to_first_point": summarize(starts),
    }
