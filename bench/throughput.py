"""Throughput: how many human steps per second does the whole stack sustain with K people working flat out?

K simulated staff (customer service, warehouse, operations in turn) work returns_exchange and
presales_order instances over HTTP for S seconds on an isolated stack: each polls its inbox,
claims the oldest tasks it may take and completes them with valid form data (sample_data from
the step's JSON Schema; one return in four is inspected damaged, so operations approves a
deduction). A feeder keeps `--in-flight` instances active, so staff never starve and the backlog
stays bounded. An observer reads our database every 0.1 s (no load on the API) and notes when
each task became visible and when each instance ended.

A human step is done when the task after it is visible or its instance ended. After the warm-up:
done steps/s, completes/s accepted by the API, complete 200 → next task visible (p50/p95/p99),
what is left in the pipeline at the end (completes whose next task had not appeared, undelivered
outbox rows, tasks waiting in inboxes), CPU-seconds of each process per done step, the Prefect
API calls per step (from the Prefect server's access log) and, with py-spy installed, where each
process spends its CPU (a sampling profile of worker, Prefect server and API over the window).

--compare-bare then runs the same staff and flow shapes on a bare Prefect served deployment
(bench.bare_prefect, on a fresh Prefect server of its own) and prints both side by side with the
ratios. There each execution is a new ~5 CPU-s process, so a few runs in flight already use every
core: it keeps --bare-in-flight runs (default one per person) and needs a longer warm-up than ours.

    cd /work/main && .venv/bin/python -m bench.throughput --db sqlite --staff 6 --duration 120 --warmup 40 --compare-bare
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from bench.stack import (
    PREFECT_ACCESS_LOG_ENV, BenchStack, add_common_options, append_results, cpu_seconds, finish_profiles, isolated_stack,
    StackSystem, loadavg, percentile, prefect_calls, print_report, start_profiles,
)
from ecomflow.sample_data import FIRST_SKU, return_params, sample_object

ROLE_CYCLE = ("customer_service", "warehouse", "operations")
PROCESSES = ("returns_exchange", "presales_order")
DAMAGED_EVERY = 4  # one return in DAMAGED_EVERY is inspected damaged: operations approves its deduction
ENDED = ("completed", "failed", "cancelled")


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
        with self.lock:
            self.calls[kind] += 1
            if not ok:
                self.refused[f"{kind} {status}{f' {reason}' if reason else ''}"] += 1
        return ok

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(text[:300])

    def observe(self, points: Iterable[tuple[str, str]], ends: Iterable[tuple[str, str]], now: float) -> None:
        with self.lock:
            for key in points:
                self.seen.setdefault(key, now)
            for instance, state in ends:
                self.ended.setdefault(instance, (now, state))

    def in_flight(self) -> int:
        with self.lock:
            return len(self.started) - sum(1 for i in self.started if i in self.ended)


class System(Protocol):
    """One system under load: ours (an isolated ecomflow stack) or a bare Prefect served deployment."""

    name: str
    staff_use_prefect: bool  # whether the harness's own requests go to the Prefect server (bare) or to our API

    def desks(self, recorder: Recorder) -> list["Desk"]: ...
    def start_one(self, number: int, recorder: Recorder) -> str: ...
    def probe(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]: ...
    def pipeline(self) -> dict[str, int]: ...
    def services(self) -> dict[str, int]: ...
    def prefect_log(self) -> Path: ...
    def check_alive(self) -> None: ...


class Desk(Protocol):
    """One person's view: an inbox, taking an item, completing it."""

    def inbox(self) -> list[Item]: ...
    def take(self, item: Item) -> bool: ...
    def complete(self, item: Item) -> bool: ...


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
                    recorder.completions.append(Completion(item.instance, item.point, item.step, sent, time.monotonic()))
            else:
                stop.wait(poll)
        except Exception as exc:  # noqa: BLE001 - a timeout under load must not end a person's shift
            recorder.error(f"staff: {exc!r}")
            stop.wait(poll)


def _feed(system: System, recorder: Recorder, stop: threading.Event, *, in_flight: int) -> None:
    number = 0
    while not stop.is_set():
        if recorder.in_flight() >= in_flight:
            stop.wait(0.05)
            continue
        try:
            instance = system.start_one(number, recorder)
            with recorder.lock:
                recorder.started[instance] = time.monotonic()
        except Exception as exc:  # noqa: BLE001
            recorder.error(f"feeder: {exc!r}")
            stop.wait(0.5)
        number += 1


def _observe(system: System, recorder: Recorder, stop: threading.Event, *, interval: float) -> None:
    while not stop.is_set():
        try:
            points, ends = system.probe()
            recorder.observe(points, ends, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - a locked SQLite read is retried next time
            recorder.error(f"observer: {exc!r}")
        stop.wait(interval)


def _snapshot(system: System, recorder: Recorder) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log = system.prefect_log()
    with recorder.lock:
        calls = Counter(recorder.calls)
    return {
        "at": time.monotonic(),
        "calls": calls,
        "cpu_s": {name: cpu_seconds(pid) for name, pid in system.services().items()},
        "harness_cpu_s": usage.ru_utime + usage.ru_stime,
        "log_offset": log.stat().st_size if log.exists() else 0,
        "pipeline": system.pipeline(),
    }


def _sleep_until(deadline: float, system: System) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        system.check_alive()


def measure(system: System, *, warmup: float, duration: float, in_flight: int, poll: float = 0.5,
            interval: float = 0.1, drain: float = 30, profile: bool = True, profile_rate: int = 10,
            profile_dir: Path | None = None) -> dict[str, Any]:
    """Load the system for `duration` s, measure from `warmup` on, let the last steps finish; return the figures."""
    recorder, stop_work, stop_observer = Recorder(), threading.Event(), threading.Event()
    observer = threading.Thread(target=_observe, args=(system, recorder, stop_observer), kwargs={"interval": interval}, daemon=True)
    workers = [threading.Thread(target=_feed, args=(system, recorder, stop_work), kwargs={"in_flight": in_flight}, daemon=True)]
    workers += [threading.Thread(target=_work, args=(desk, recorder, stop_work), kwargs={"poll": poll, "seed": n}, daemon=True)
                for n, desk in enumerate(system.desks(recorder))]
    profilers: dict[str, Any] = {}
    began = time.monotonic()
    observer.start()
    for thread in workers:
        thread.start()
    try:
        _sleep_until(began + warmup, system)
        first = _snapshot(system, recorder)
        profilers = start_profiles(system.services(), seconds=duration - warmup, rate=profile_rate,
                                   out_dir=profile_dir) if profile and profile_dir else {}
        _sleep_until(began + duration, system)
        last = _snapshot(system, recorder)
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
    figures.update({
        "cpu_s": {name: round(last["cpu_s"][name] - first["cpu_s"][name], 2) for name in last["cpu_s"]},
        "harness_cpu_s": round(last["harness_cpu_s"] - first["harness_cpu_s"], 2),
        "pipeline": {"start": first["pipeline"], "end": last["pipeline"]},
        "prefect_calls": prefect_calls(system.prefect_log(), first["log_offset"], last["log_offset"]),
        "harness_calls": dict(last["calls"] - first["calls"]), "refused": dict(recorder.refused), "errors": recorder.errors,
        "profiles": profiles, "profiler_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "settings": {"staff": len(workers) - 1, "in_flight": in_flight, "poll_s": poll, "observe_s": interval,
                     "warmup_s": warmup, "duration_s": duration, "profile_rate": profile_rate if profiles else None},
    })
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


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), **{f"p{q}_s": round(percentile(values, q), 3) for q in (50, 95, 99)},
            "max_s": round(max(values), 3)}


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
        return sum(1 for (instance, point), seen in recorder.seen.items()
                   if seen <= t and taken.get(point, float("inf")) > t
                   and recorder.ended.get(instance, (float("inf"),))[0] > t)

    first_point: dict[str, float] = {}
    for (instance, _), seen in recorder.seen.items():
        first_point[instance] = min(seen, first_point.get(instance, seen))
    starts = [first_point[i] - t for i, t in recorder.started.items() if w0 <= t <= w1 and i in first_point]
    steps = sum(1 for d in done.values() if d is not None and w0 <= d <= w1)
    return {
        "window_s": round(window, 1),
        "steps_done": steps,
        "steps_per_s": round(steps / window, 3),
        "accepted": len(in_window),
        "accepted_per_s": round(len(in_window) / window, 3),
        "turnaround": _spread(turnaround),
        "turnaround_by_step": {step: _spread([done[c] - c.accepted for c in in_window if c.step == step and done[c] is not None])
                               for step in sorted({c.step for c in in_window})},
        "not_done_after_drain": sum(1 for c in in_window if done[c] is None),
        "in_pipeline": {"start": pipeline_at(w0), "end": pipeline_at(w1)},
        "waiting_in_inbox": {"start": waiting_at(w0), "end": waiting_at(w1)},
        "started": sum(1 for t in recorder.started.values() if w0 <= t <= w1),
        "ended": Counter(state for t, state in recorder.ended.values() if w0 <= t <= w1),
        "start_to_first_point": _spread(starts),
    }


# --------------------------------------------------------------------------- ecomflow under load


class OurDesk:
    """One member of staff at ecomflow's API: inbox (oldest first), claim, complete."""

    def __init__(self, stack: BenchStack, user: str, role: str, forms: dict[tuple[str, str], dict], roles: list[str],
                 recorder: Recorder) -> None:
        self.http, self.role, self.forms, self.roles, self.recorder = stack.staff(user).http, role, forms, roles, recorder

    def _tasks(self, **params: Any) -> list[Item]:
        response = self.http.get("/tasks", params={"state": "open", "sort": "created", "limit": 20, **params})
        if not self.recorder.call("GET /tasks", response.status_code, response.status_code == 200):
            return []
        return [Item(t["instance_id"], t["id"], t["process"], t["step"]) for t in response.json()["items"]]

    def inbox(self) -> list[Item]:
        items = self._tasks(role=self.role)
        if not items and self.role == "operations":
            # Operations (managers) help everyone, except with inspections they might have to approve (four-eyes).
            items = [i for i in self._tasks() if i.step != "inspect"]
        return items

    def take(self, item: Item) -> bool:
        response = self.http.post(f"/tasks/{item.point}/claim")
        return self.recorder.call("POST claim", response.status_code, response.status_code == 200)

    def complete(self, item: Item) -> bool:
        data = sample_object(self.forms[(item.process, item.step)])
        if item.step == "inspect":
            damaged = is_damaged(item.instance, self.roles)
            data.update(condition="damaged" if damaged else "ok", deduction=10 if damaged else 0)
        response = self.http.post(f"/tasks/{item.point}/complete", json={"data": data})
        if response.status_code != 200:
            self.recorder.error(f"complete {item.process}/{item.step}: {response.status_code} {response.text}")
        return self.recorder.call("POST complete", response.status_code, response.status_code == 200)


class OurSystem(StackSystem):
    """ecomflow on an isolated stack; the observer reads our database directly."""

    name = "ecomflow"
    staff_use_prefect = False

    def __init__(self, stack: BenchStack, roles: list[str]) -> None:
        from ecomflow.engine.clock import utcnow
        from ecomflow.engine.db.sessions import session_scope
        from ecomflow.engine.shop.inventory import upsert_sku

        self.stack, self.roles, self.since = stack, roles, utcnow()
        with session_scope(stack.database_url) as session:  # enough stock that no order ever runs short
            upsert_sku(session, sku=FIRST_SKU, name="bench tee", online_price=Decimal(179), offline_price=Decimal(199), stock=10**8)
        self.starter = stack.staff("feeder").http
        self.forms = {(key, step["key"]): step.get("form") or {} for key in PROCESSES
                      for step in self.starter.get(f"/processes/{key}").raise_for_status().json()["steps"]}

    def desks(self, recorder: Recorder) -> list[Desk]:
        return [OurDesk(self.stack, f"staff{n}", role, self.forms, self.roles, recorder) for n, role in enumerate(self.roles)]

    def start_one(self, number: int, recorder: Recorder) -> str:
        process = PROCESSES[number % len(PROCESSES)]
        params = return_params() if process == "returns_exchange" else {"customer": f"顾客{number}", "question": "有白色M码吗？", "channel": "im"}
        response = self.starter.post(f"/processes/{process}/instances", json={"business_key": f"TP-{uuid.uuid4().hex[:10]}", "params": params})
        recorder.call("POST instances", response.status_code, response.status_code == 201)
        response.raise_for_status()
        return response.json()["id"]

    def probe(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        from sqlalchemy import select

        from ecomflow.engine.db.sessions import session_scope
        from ecomflow.engine.db.models import HumanTask, ProcessInstance

        with session_scope(self.stack.database_url) as session:
            tasks = session.execute(select(HumanTask.instance_id, HumanTask.id).where(HumanTask.created_at >= self.since)).all()
            ends = session.execute(select(ProcessInstance.id, ProcessInstance.state).where(
                ProcessInstance.created_at >= self.since, ProcessInstance.state.in_(ENDED))).all()
        return [tuple(t) for t in tasks], [tuple(e) for e in ends]

    def pipeline(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from ecomflow.engine.db.sessions import session_scope
        from ecomflow.engine.db.models import HumanTask, OutboxMessage

        with session_scope(self.stack.database_url) as session:
            undelivered = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None), OutboxMessage.kind != "webhook"))
            open_tasks = session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == "open"))
        running = self.stack.prefect_count(["SCHEDULED", "PENDING", "RUNNING"])
        return {"outbox undelivered": undelivered, "tasks open": open_tasks, "Prefect runs scheduled/pending/running": running}



def run_ours(db: str, *, staff: int, duration: float, warmup: float, in_flight: int, env: dict[str, str] | None = None,
             keep_data: bool = False, prefect_db: str = "sqlite", profile: bool = True, **options: Any) -> dict[str, Any]:
    """Start an isolated stack, load it, stop it; return the figures."""
    roles = staff_roles(staff)
    users = {"feeder": ("customer_service",), **{f"staff{n}": (role,) for n, role in enumerate(roles)}}
    with isolated_stack(db, users=users, env=env, keep_data=keep_data, prefect_db=prefect_db,
                        prefect_server_env=PREFECT_ACCESS_LOG_ENV) as stack:
        system = OurSystem(stack, roles)
        figures = measure(system, warmup=warmup, duration=duration, in_flight=in_flight, profile=profile,
                          profile_dir=stack.data_dir / "profiles", **options)
        figures["startup"], figures["stack_settings"] = dict(stack.timings), stack.effective_settings()
    figures.update(roles=Counter(roles), data_dir=str(stack.data_dir), **_log_figures(stack.log_report))
    return figures


def _log_figures(log_report: dict[str, Any]) -> dict[str, Any]:
    return {
        "logs": {name: {k: r[k] for k in ("errors", "warnings")} for name, r in log_report.items()},
        "first_errors": {name: r["first_error_context"] for name, r in log_report.items() if r["first_error_context"]},
        "log_samples": {name: r["samples"] for name, r in log_report.items() if r["samples"]},
    }




# --------------------------------------------------------------------------- report and command line


def _spread_text(s: dict[str, float]) -> str:
    if not s.get("n"):
        return "—"
    return f"p50 {s['p50_s']:.2f} s · p95 {s['p95_s']:.2f} s · p99 {s['p99_s']:.2f} s · max {s['max_s']:.2f} s (n={s['n']})"


def _per_step(count: int, steps: int) -> str:
    return f"{count / steps:.1f}" if steps else "—"


def system_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures of one system, one (name, value) row each."""
    steps, cpu = f["steps_done"], f["cpu_s"]
    calls = f["prefect_calls"]
    rows = [
        ("human steps done/s (next task visible or instance ended)", f"{f['steps_per_s']:.2f} ({steps} in {f['window_s']} s)"),
        ("completes accepted/s", f"{f['accepted_per_s']:.2f} ({f['accepted']})"),
        ("complete 200 → next task visible (or ended)", _spread_text(f["turnaround"])),
        *[(f"… after {step}", _spread_text(s)) for step, s in f["turnaround_by_step"].items()],
        ("start 201 → first task visible", _spread_text(f["start_to_first_point"])),
        ("instances started / ended in the window", f"{f['started']} / {sum(f['ended'].values())} {dict(f['ended'])}"),
        ("accepted, next not yet visible: window start → end", "{start} → {end}".format(**f["in_pipeline"])),
        ("waiting in inboxes: window start → end", "{start} → {end}".format(**f["waiting_in_inbox"])),
        *[(f"{name}: window start → end", f"{f['pipeline']['start'][name]} → {f['pipeline']['end'][name]}") for name in f["pipeline"]["end"]],
        ("completes still without a next task after the drain", str(f["not_done_after_drain"])),
        ("CPU-s per done step: " + " / ".join(cpu), " / ".join(f"{v:.2f}" if v is not None else "—" for v in f["cpu_s_per_step"].values())
         + (f" (total {sum(cpu.values()) / steps:.2f})" if steps else "")),
        ("CPU-s in the window: " + " / ".join(cpu) + " / harness / py-spy", " / ".join(f"{v:.1f}" for v in cpu.values())
         + f" / {f['harness_cpu_s']:.1f} / {f['profiler_cpu_s']:.1f}"),
        ("Prefect API calls per done step (top endpoints)", f"{_per_step(sum(calls.values()), steps)}, of which staff and "
         f"feeder {_per_step(f['prefect_calls_by_harness'], steps)}: " + ", ".join(
            f"{k} {_per_step(v, steps)}" for k, v in list(calls.items())[:5])),
        ("harness requests per done step", ", ".join(f"{k} {_per_step(v, steps)}" for k, v in f["harness_calls"].items())),
        ("refused answers (kind status: count)", ", ".join(f"{k}: {v}" for k, v in f["refused"].items()) or "none"),
    ]
    rows += [
        ("stack start", ", ".join(f"{k} {v} s" for k, v in f["startup"].items())),
        ("log lines ERROR / WARNING", ", ".join(f"{n}: {r['errors']}/{r['warnings']}" for n, r in f["logs"].items())),
    ]
    if not f["profiles"]:
        rows.append(("sampling profiles", "none (--no-profile, or py-spy is not installed: pip install py-spy)"))
    for name, p in f["profiles"].items():
        if p.get("working_samples"):
            rows.append((f"profile {name}: self time by package", ", ".join(f"{k} {v}%" for k, v in p["self_by_package"][:5])))
            rows.append((f"profile {name}: top inclusive", ", ".join(f"{k} {v}%" for k, v in p["inclusive"][:6])))
    return rows


def table(results: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """One system's rows, or both side by side with the ratios first."""
    if len(results) == 1:
        [figures] = results.values()
        return system_rows(figures)
    ours, bare = results["ecomflow"], results["bare"]

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}" if a and b else "—"

    def cpu_total(f: dict[str, Any]) -> float | None:
        return sum(f["cpu_s"].values()) / f["steps_done"] if f["steps_done"] else None

    rows = [
        ("ratio ecomflow / bare: human steps done/s", ratio(ours["steps_per_s"], bare["steps_per_s"])),
        ("ratio ecomflow / bare: turnaround p50", ratio(ours["turnaround"].get("p50_s"), bare["turnaround"].get("p50_s"))),
        ("ratio ecomflow / bare: CPU-s per done step (all processes)", ratio(cpu_total(ours), cpu_total(bare))),
    ]
    for name, figures in results.items():
        rows += [(f"{name}: {label}", value) for label, value in system_rows(figures)]
    return rows


def _notes(results: dict[str, dict[str, Any]], env: dict[str, str]) -> list[str]:
    notes = []
    for name, f in results.items():
        settings = {**f["settings"], **f.get("stack_settings", {})}
        notes.append(f"{name} settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + f", roles {dict(f['roles'])}")
        for proc, p in f["profiles"].items():
            if p.get("working_samples"):
                notes.append(f"{name} profile of {proc} ({p['working_samples']} working of {p['samples']} samples), top self: " + ", ".join(
                    f"`{k}` {v}%" for k, v in p["self_by_function"][:5]))
        for proc, context in f["first_errors"].items():
            notes.append(f"{name}: first ERROR in {proc}: `{context[0].strip()[:200]}`")
        if f["errors"]:
            notes.append(f"{name}: harness errors (first): `{f['errors'][0][:200]}`")
    notes.append(f"env overrides: {env or 'none'}; the Prefect servers ran with {PREFECT_ACCESS_LOG_ENV} (access log for call counts)")
    return notes


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--staff", type=int, default=6, help="simulated staff (roles in turn: customer service, warehouse, operations)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load, warm-up included")
    parser.add_argument("--warmup", type=float, default=15, help="seconds before measuring")
    parser.add_argument("--in-flight", type=int, default=None, help="active instances the feeder keeps (default 4 per staff)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds a person waits before looking at an empty inbox again")
    parser.add_argument("--drain", type=float, default=30, help="seconds to let the last accepted completes show their next task")
    parser.add_argument("--compare-bare", action="store_true", help="then run the same load on a bare Prefect served deployment")
    parser.add_argument("--bare-only", action="store_true", help="run only the bare Prefect side")
    parser.add_argument("--bare-poll", type=int, default=1, help="PREFECT_RUNNER_POLL_FREQUENCY of the bare served runner")
    parser.add_argument("--bare-in-flight", type=int, default=None,
                        help="active runs on the bare side (default: one per staff; each execution there is a ~5 CPU-s process, "
                             "so a few runs already use every core and more only queue, and the first 4 per staff would take "
                             "the whole of a short run to start)")
    parser.add_argument("--no-profile", action="store_true", help="do not sample the processes with py-spy")
    parser.add_argument("--profile-rate", type=int, default=10, help="py-spy samples per second (each sampled process costs some CPU)")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup < args.duration:
        parser.error("--warmup must be at least 0 and less than --duration")
    env = dict(item.split("=", 1) for item in args.env)
    options = dict(staff=args.staff, duration=args.duration, warmup=args.warmup, in_flight=args.in_flight or 4 * args.staff,
                   keep_data=args.keep, prefect_db=args.prefect_db, profile=not args.no_profile, poll=args.poll,
                   drain=args.drain, profile_rate=args.profile_rate)
    load_before = loadavg()
    results: dict[str, dict[str, Any]] = {}
    if not args.bare_only:
        results["ecomflow"] = run_ours(args.db, env=env or None, **options)
    if args.compare_bare or args.bare_only:
        from bench.bare_prefect import run_bare

        results["bare"] = run_bare(poll_seconds=args.bare_poll, **{**options, "in_flight": args.bare_in_flight or args.staff})
    rows = table(results)
    merged = {
        "log_samples": {f"{s} {n}": v for s, f in results.items() for n, v in f["log_samples"].items()},
        "first_errors": {f"{s} {n}": v for s, f in results.items() for n, v in f["first_errors"].items()},
        "data_dir": ", ".join(f["data_dir"] for f in results.values()),
    }
    print_report(rows, merged)
    for name, figures in results.items():
        for proc, p in figures["profiles"].items():
            print(f"--- {name} profile of {proc}:", json.dumps({k: v for k, v in p.items() if k != "file"}, ensure_ascii=False))
        if figures["errors"]:
            print(f"--- {name} harness errors:", *figures["errors"][:5], sep="\n    ")
    if not args.no_record:
        title = "Throughput vs bare Prefect" if len(results) == 2 else f"Throughput ({next(iter(results))})"
        db = args.db if args.prefect_db == "sqlite" else f"{args.db}, Prefect on postgresql"
        append_results(f"{title}, {args.staff} staff, {args.duration:.0f} s", db=db, rows=rows,
                       notes=_notes(results, env), load_before=load_before, prefect_db=args.prefect_db)
    return results


if __name__ == "__main__":
    main()
