"""Chaos: drive returns and pre-sales orders through the API while the processes under them are killed.

Simulated staff (customer service, warehouse, operations) work their inboxes over HTTP the way
people do: read the task, claim it, submit the form; on a connection error or a 5xx they wait and
try again (the complete carries an Idempotency-Key, as a browser retrying a submit would), and
every completion answered 200 is written down. Meanwhile a chaos thread, at random intervals from
a seeded RNG, SIGKILLs and restarts one of the API, the flow worker and the Prefect server (on
--db postgresql also restarts PostgreSQL itself). Then everything down is restarted, the staff
finish what they can, the system settles, and the database and Prefect are checked: every
instance is ended or waits on a person or a timer, nothing ran twice, nothing answered 200 was lost.

    cd /work/main && .venv/bin/python -m bench.chaos --db sqlite --instances 40 --duration 180 --seed 1
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from bench.stack import BenchStack, append_results, closing_rows, isolated_stack, loadavg, report_notes
from ecomflow.sample_data import return_params

PROCESSES = ("returns_exchange", "presales_order")
USERS = {
    "cs1": ("customer_service",), "cs2": ("customer_service",),
    "wh1": ("warehouse",), "wh2": ("warehouse",),
    "ops1": ("operations",),
}
# Short leases and polls, so a dead worker's runs come back within seconds.
CHAOS_ENV = {
    "ECOMFLOW_RUN_LEASE_SECONDS": "3",
    "ECOMFLOW_WORKER_POLL_SECONDS": "0.2",
    "ECOMFLOW_DISPATCHER_POLL_SECONDS": "0.3",
    "ECOMFLOW_SWEEPER_POLL_SECONDS": "1",
    "ECOMFLOW_OUTBOX_LEASE_SECONDS": "5",
}
# SKU → initial stock: plenty, some, scarce (shortages part-way), none (always short).
SKUS = {"CHAOS-TEE": 100_000, "CHAOS-CAP": 500, "CHAOS-SCARCE": 6, "CHAOS-GONE": 0}
SKU_WEIGHTS = (("CHAOS-TEE", 50), ("CHAOS-CAP", 30), ("CHAOS-SCARCE", 15), ("CHAOS-GONE", 5))
TARGETS = ("api", "worker", "prefect")
ACTIVE_TASK_STATES = ("open", "claimed")
# Steps that may run in more than one round, and what makes round r+1 legitimate.
LOOPING_STEPS = {"inspect", "deduction_approval", "answer_inquiry", "shortage_decision"}


# --------------------------------------------------------------------------- what happened


class Tally:
    """Thread-safe counters of what the staff saw."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass(frozen=True)
class Completion:
    """A complete that the API answered 200."""

    task_id: str
    instance_id: str
    step: str
    round: int
    by: str
    data: dict[str, Any]
    attempts: int


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


@dataclass
class Check:
    """One verdict over the final state."""

    name: str
    offenders: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.offenders


# --------------------------------------------------------------------------- people over HTTP


class Person:
    """One member of staff using the API, retrying like a person would on errors and 5xx."""

    def __init__(self, base_url: str, name: str, token: str, tally: Tally) -> None:
        self.name = name
        self.tally = tally
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def call(self, method: str, path: str, *, patience: float = 90, **kwargs: Any) -> tuple[httpx.Response | None, int]:
        """Send until an answer below 500 comes back; return it (None after `patience` seconds) and the attempts."""
        deadline, attempt, last = time.monotonic() + patience, 0, ""
        while True:
            attempt += 1
            self.tally.add("requests")
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                self.tally.add("connection errors")
                last = repr(exc)
            else:
                if response.status_code < 500:
                    return response, attempt
                self.tally.add("5xx")
                last = f"{response.status_code} {response.text[:120]}"
            if time.monotonic() >= deadline:
                self.tally.add("gave up")
                if method != "GET":
                    print(f"[chaos] {self.name} gave up {method} {path} after {attempt} attempts: {last}", file=sys.stderr)
                return None, attempt
            self.tally.add("retries")
            time.sleep(min(3.0, 0.2 * 2 ** min(attempt - 1, 4)) * random.uniform(0.5, 1.0))

    def close(self) -> None:
        self.http.close()


def form_data(*, seed: int, business_key: str, step: str, rnd: int) -> dict[str, Any]:
    """What a person enters for a step: seeded per (instance, step, round), so each run makes the same choices."""
    rng = random.Random(f"{seed}/{business_key}/{step}/{rnd}")

    def approval(p: float) -> dict[str, Any]:
        return {"decision": "approve", "comment": "同意"} if rng.random() < p else {"decision": "reject", "comment": "不符合条件"}

    number = f"{rng.getrandbits(40):012d}"
    if step == "cs_review":
        return approval(0.9)
    if step == "goodwill_approval":
        return approval(0.8)
    if step == "deduction_approval":
        return approval(0.6 if rnd == 1 else 1.0)
    if step == "await_parcel":
        return {"return_tracking_no": f"SF{number}", "carrier": "SF"}
    if step == "inspect":
        if rnd == 1 and rng.random() < 0.3:
            return {"condition": "damaged", "restock": "no", "deduction": rng.choice([10, 20, 35.5]), "notes": "外包装破损"}
        return {"condition": "ok", "restock": "yes"}
    if step in ("reship", "ship"):
        return {"carrier": "SF", "tracking_no": f"SF{number}"}
    if step == "follow_up":
        return {"contact_result": rng.choice(["resolved", "unreachable", "escalated"]), "notes": "已电话回访"}
    if step == "answer_inquiry":
        roll = rng.random()
        if rnd == 1 and roll < 0.08:
            return {"outcome": "no_order", "recommended_skus": ["CHAOS-TEE"]}
        skus, weights = zip(*SKU_WEIGHTS)
        lines = [{"sku": rng.choices(skus, weights)[0], "quantity": rng.randint(1, 3)} for _ in range(rng.randint(1, 3))]
        data: dict[str, Any] = {"outcome": "ordered", "order_id": f"ORD-{number}", "order_lines": lines, "fulfilment": "ship"}
        if rnd == 1 and roll < 0.18:
            del data["order_lines"]  # forgotten: the flow sends it back, round 2
        if rng.random() < 0.3:
            data.update(fulfilment="store_pickup", pickup_store="上海南京西路店")
        return data
    if step == "shortage_decision":
        if rnd >= 3:
            choice = "cancel_order"
        elif rnd == 2:
            choice = rng.choice(["cancel_order", "partial_ship"])
        else:
            choice = rng.choices(["partial_ship", "transfer_from_store", "cancel_order", "backorder"], [35, 25, 25, 15])[0]
        return {"decision": choice, "notes": "按库存处理"}
    if step == "print_and_pick":
        return {"waybill_no": f"WB{number}"}
    if step == "verify_and_pack":
        return {"packages": rng.randint(1, 3), "weight_kg": round(rng.uniform(0.2, 5.0), 2)}
    if step == "prepare_pickup":
        return {"store": "上海南京西路店", "shelf_location": "A-03"}
    if step == "picked_up":
        return {"outcome": "picked_up" if rng.random() < 0.7 else "not_collected", "notes": "门店反馈"}
    raise ValueError(f"no form data for step {step}")


class StaffThread(threading.Thread):
    """A person working their inbox until told to stop: their claimed tasks first, then the open queue."""

    def __init__(self, person: Person, *, seed: int, ledger: list[Completion], lock: threading.Lock, stop: threading.Event) -> None:
        super().__init__(name=f"staff-{person.name}", daemon=True)
        self.person, self.seed, self.ledger, self.lock, self.stop = person, seed, ledger, lock, stop
        self.rng = random.Random(f"{seed}/{person.name}")
        self.role = USERS[person.name][0]
        self.refused: set[str] = set()  # tasks the API will not let me do (four-eyes): left to colleagues

    def run(self) -> None:
        while not self.stop.is_set():
            task = self._next_task()
            if task is None:
                self.stop.wait(0.3)
                continue
            self._work(task)

    def _next_task(self) -> dict[str, Any] | None:
        # Operations are managers and see every queue: everyone works their own role's queue.
        for params in ({"state": "claimed", "mine": "true"}, {"state": "open", "role": self.role}):
            response, _ = self.person.call("GET", "/tasks", params={**params, "limit": 20, "sort": "created"}, patience=10)
            if response is None or response.status_code != 200:
                continue
            items = [item for item in response.json()["items"] if item["id"] not in self.refused]
            if items:
                return self.rng.choice(items[:3])  # not always the oldest: colleagues collide now and then
        return None

    def _work(self, task: dict[str, Any]) -> None:
        tally, me = self.person.tally, self.person.name
        response, _ = self.person.call("GET", f"/tasks/{task['id']}")
        if response is None or response.status_code != 200:
            return
        detail = response.json()
        if detail["state"] == "open":
            claimed, _ = self.person.call("POST", f"/tasks/{task['id']}/claim")
            if claimed is None:
                return
            error = claimed.json().get("error") if claimed.status_code >= 400 else None
            if claimed.status_code == 403 or error == "FourEyesViolation":
                self.refused.add(task["id"])
                tally.add(f"claims refused ({error or claimed.status_code})")
                return
            if claimed.status_code == 409:
                # Taken by a colleague, or by me on an attempt whose answer was lost: look again.
                again, _ = self.person.call("GET", f"/tasks/{task['id']}")
                if again is None or again.status_code != 200 or again.json()["assignee"] != me or again.json()["state"] != "claimed":
                    tally.add("claims lost to a colleague")
                    return
                tally.add("claims answered 409 but mine")
            elif claimed.status_code != 200:
                tally.add(f"claim {claimed.status_code}")
                return
        elif detail["state"] != "claimed" or detail["assignee"] != me:
            return
        data = form_data(seed=self.seed, business_key=detail["context"]["business_key"], step=detail["step"], rnd=detail["round"])
        self.stop.wait(self.rng.uniform(0.05, 0.3))  # reading and typing
        done, attempts = self.person.call(
            "POST", f"/tasks/{task['id']}/complete", json={"data": data}, headers={"Idempotency-Key": f"chaos-{task['id']}"},
            patience=120,
        )
        if done is None:
            return
        if done.status_code != 200:
            tally.add(f"complete {done.status_code}")
            if done.status_code == 422:
                print(f"[chaos] {me}: complete of {detail['step']} refused: {done.text[:300]}", file=sys.stderr)
            return
        with self.lock:
            self.ledger.append(Completion(task_id=task["id"], instance_id=detail["instance_id"], step=detail["step"],
                                          round=detail["round"], by=me, data=data, attempts=attempts))
        if attempts > 1:
            tally.add("completes answered 200 after a retry")


# --------------------------------------------------------------------------- starting instances


@dataclass(frozen=True)
class Planned:
    """One instance to start: its process, business key, params, and a rating the marketplace reports first."""

    process: str
    business_key: str
    params: dict[str, Any]
    rating: int | None = None


def plan_instances(seed: int, count: int) -> list[Planned]:
    """Return the instances to start, half returns and half orders, with seeded variations."""
    rng = random.Random(f"{seed}/plan")
    planned = []
    for number in range(count):
        if number % 2 == 0:
            params = return_params(
                kind=rng.choices(["return", "exchange"], [7, 3])[0],
                category=rng.choices(["normal", "fresh"], [85, 15])[0],  # fresh: ineligible, a goodwill approval
                amount=rng.choice([59.0, 129.0, 199.0, 459.0]),
            )
            roll = rng.random()
            rating = rng.choice([1, 2]) if roll < 0.25 else (5 if roll < 0.4 else None)
            planned.append(Planned("returns_exchange", f"CHAOS-{seed}-{number:04d}-R", params, rating))
        else:
            params = {"customer": f"buyer-{seed}-{number}", "question": "这款有货吗？今天能发吗？", "channel": rng.choice(["im", "phone"])}
            planned.append(Planned("presales_order", f"CHAOS-{seed}-{number:04d}-P", params))
    return planned


def retry_db(action: Callable[[], Any], *, what: str, patience: float = 90) -> Any:
    """Run a database action, retrying while the database restarts."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - e.g. PostgreSQL restarting
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{what} kept failing: {exc}") from exc
            time.sleep(0.5)


class Starter(threading.Thread):
    """The shop front: starts the planned instances spread over `spread` seconds, retrying like staff."""

    def __init__(self, person: Person, planned: list[Planned], *, database_url: str, spread: float, stop: threading.Event) -> None:
        super().__init__(name="starter", daemon=True)
        self.person, self.planned, self.database_url, self.spread, self.stop = person, planned, database_url, spread, stop
        self.started: dict[str, str] = {}  # business key → how it was started

    def run(self) -> None:
        from ecomflow.engine.db.sessions import session_scope
        from ecomflow.engine.shop.ratings import report_rating

        began = time.monotonic()
        for number, item in enumerate(self.planned):
            if self.stop.wait(max(0.0, began + number * self.spread / max(len(self.planned), 1) - time.monotonic())):
                return
            if item.rating is not None:
                def rate(item: Planned = item) -> None:
                    with session_scope(self.database_url) as session:
                        report_rating(session, order_id=item.params["order_id"], rating=item.rating)
                retry_db(rate, what=f"reporting the rating of {item.business_key}")
            response, _ = self.person.call(
                "POST", f"/processes/{item.process}/instances", json={"business_key": item.business_key, "params": item.params},
                patience=120,
            )
            if response is None:
                self.started[item.business_key] = "gave up"
            elif response.status_code == 201:
                self.started[item.business_key] = "201"
            elif response.status_code == 409:  # an earlier attempt got through but its answer was lost
                self.started[item.business_key] = "409 after a lost answer"
            else:
                self.started[item.business_key] = f"{response.status_code}: {response.text[:200]}"


# --------------------------------------------------------------------------- the chaos


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

    def __init__(self, stack: BenchStack, *, seed: int, duration: float, kill_every: tuple[float, float],
                 targets: Sequence[str], plan: Sequence[tuple[float, str]] | None = None) -> None:
        super().__init__(name="chaos", daemon=True)
        self.stack, self.duration, self.kill_every, self.plan = stack, duration, kill_every, plan
        self.rng = random.Random(f"{seed}/chaos")
        self.targets = list(targets)
        self.kills: list[Kill] = []
        self.began = 0.0
        self.error: BaseException | None = None

    def _schedule(self) -> Iterable[tuple[float, str]]:
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
        self.began = time.monotonic()
        try:
            for at, what in self._schedule():
                if at >= self.duration:
                    break
                self._sleep_watching(self.began + at)
                self.kills.append(self._hit(what))
            self._sleep_watching(self.began + self.duration)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc

    def _sleep_watching(self, until: float) -> None:
        """Sleep until the time, restarting (and recording) any part found dead that we did not kill."""
        while (left := until - time.monotonic()) > 0:
            for name, service in self.stack.services().items():
                if not service.running():
                    kill = Kill(what=name, at_s=round(time.monotonic() - self.began, 1),
                                how=f"found dead (exit {service.process.returncode})")
                    found = time.monotonic()
                    kill.note = self._bring_back(name, service, ready_lines=_count_lines(service.log_path, WORKER_READY))
                    kill.back_after_s = round(time.monotonic() - found, 1)
                    print(f"[chaos] {kill.at_s:6.1f}s {name}: {kill.how}, back after {kill.back_after_s}s {kill.note}", file=sys.stderr)
                    self.kills.append(kill)
            time.sleep(min(0.5, max(left, 0.0)))

    @staticmethod
    def _bring_back(name: str, service: Any, *, ready_lines: int) -> str:
        note = restart(service)
        return note + wait_worker_ready(service, ready_lines) if name == "worker" else note

    def _hit(self, what: str) -> Kill:
        kill = Kill(what=what, at_s=round(time.monotonic() - self.began, 1), how="SIGKILL, restart")
        hit = time.monotonic()
        if what == "postgresql":
            kill.how = "pg_ctlcluster restart"
            done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", postgres_version(), "main", "restart"],
                                  capture_output=True, text=True, timeout=120)
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
        print(f"[chaos] {kill.at_s:6.1f}s {what}: {kill.how}, back after {kill.back_after_s}s {kill.note}", file=sys.stderr)
        return kill


WORKER_READY = "worker ready:"


def _count_lines(path: Any, text: str) -> int:
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


# --------------------------------------------------------------------------- settling


def prefect_runs(stack: BenchStack) -> list[dict[str, Any]]:
    """Every flow run of our two processes, read page by page (Prefect answers 503 while its SQLite is locked)."""
    runs: list[dict[str, Any]] = []
    while True:
        body = {"flows": {"name": {"any_": list(PROCESSES)}}, "limit": 200, "offset": len(runs), "sort": "ID_DESC"}
        page = prefect_call(stack, "POST", "/flow_runs/filter", json=body)
        runs.extend(page)
        if len(page) < 200:
            return runs


def prefect_call(stack: BenchStack, method: str, path: str, **kwargs: Any) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.request(method, f"{stack.prefect_api}{path}", timeout=30, **kwargs)
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
        except httpx.TransportError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Prefect {method} {path} kept failing")
        time.sleep(0.5)


def quiet(stack: BenchStack) -> dict[str, int]:
    """What still moves: undelivered outbox messages and runs of ours scheduled, pending or running."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.events.outbox import undelivered_count

    with session_scope(stack.database_url) as session:
        undelivered = undelivered_count(session)
    moving = Counter(run["state_type"] for run in prefect_runs(stack) if run["state_type"] in ("SCHEDULED", "PENDING", "RUNNING"))
    return {"undelivered outbox": undelivered, **{f"runs {k.lower()}": v for k, v in moving.items()}}


def unfinished_for_staff(stack: BenchStack) -> int:
    """Instances of ours that are active and not parked on a timer: staff still have work there."""
    from sqlalchemy import func, select

    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.db.models import ProcessInstance, Timer

    with session_scope(stack.database_url) as session:
        on_timer = select(Timer.instance_id).where(Timer.fired_at.is_(None))
        return session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.process_key.in_(PROCESSES), ProcessInstance.state.in_(["running", "waiting"]),
            ProcessInstance.id.not_in(on_timer)))


def wait_settled(stack: BenchStack, *, timeout: float) -> tuple[float, dict[str, int]]:
    """Wait until nothing moves twice in a row, at most timeout seconds; return the time taken and what still moved."""
    began, calm, last = time.monotonic(), 0, {}
    while time.monotonic() - began < timeout:
        last = retry_db(lambda: quiet(stack), what="reading what still moves")
        calm = calm + 1 if not any(last.values()) else 0
        if calm >= 2:
            break
        time.sleep(1)
    return round(time.monotonic() - began, 1), last


# --------------------------------------------------------------------------- the checks


@dataclass
class Snapshot:
    """Everything the checks read, taken once after the system settled."""

    instances: dict[str, Any]
    tasks: dict[str, list[Any]]
    results: dict[str, list[Any]]
    timers: dict[str, list[Any]]
    outbox: list[Any]
    refunds: list[Any]
    reservations: list[Any]
    skus: dict[str, int]
    events: dict[str, list[Any]]
    catalog: list[Any]
    leases: dict[str, Any]
    runs: list[dict[str, Any]]
    now: datetime


def take_snapshot(stack: BenchStack) -> Snapshot:
    from sqlalchemy import select

    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.db.models import (AuditEvent, CatalogEntry, FlowRunLease, HumanTask, OutboxMessage, ProcessInstance, Refund,
                               Sku, StepResult, StockReservation, Timer)

    def grouped(rows: Iterable[Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            out[row.instance_id].append(row)
        return out

    runs = prefect_runs(stack)
    with session_scope(stack.database_url) as session:
        kinds = ("refund.issued", "stock.reserved", "stock.released", "instance.failed", "instance.run_rescheduled")
        return Snapshot(
            instances={i.id: i for i in session.scalars(select(ProcessInstance))},
            tasks=grouped(session.scalars(select(HumanTask).order_by(HumanTask.created_at))),
            results=grouped(session.scalars(select(StepResult))),
            timers=grouped(session.scalars(select(Timer))),
            outbox=list(session.scalars(select(OutboxMessage))),
            refunds=list(session.scalars(select(Refund))),
            reservations=list(session.scalars(select(StockReservation))),
            skus={row.sku: row.stock for row in session.scalars(select(Sku))},
            events=grouped(session.scalars(select(AuditEvent).where(AuditEvent.type.in_(kinds)))),
            catalog=list(session.scalars(select(CatalogEntry))),
            leases={row.flow_run_id: row for row in session.scalars(select(FlowRunLease))},
            runs=runs,
            now=datetime.now(UTC),
        )


def _run_of(snap: Snapshot) -> dict[str, dict[str, Any]]:
    return {str(run["parameters"].get("instance_id")): run for run in snap.runs}


def check_settled(snap: Snapshot) -> Check:
    """Every instance ended, or waits on a person or a timer with its run suspended on exactly that."""
    check, runs = Check("every instance ended or waits on a person/timer (run suspended on it)"), _run_of(snap)
    for instance in snap.instances.values():
        if instance.process_key not in PROCESSES:
            continue
        run = runs.get(instance.id)
        run_state = run["state_type"] if run else "no run"
        pause_key = ((run or {}).get("state") or {}).get("state_details", {}).get("pause_key") or ""
        if instance.state == "failed":
            why = [e.data.get("error", "") for e in snap.events.get(instance.id, []) if e.type == "instance.failed"]
            check.offenders.append(f"{instance.id} failed ({'; '.join(why)[:160]}), run {run_state}")
        elif instance.state in ("completed", "cancelled"):
            if run_state not in ("COMPLETED", "CANCELLED"):
                check.offenders.append(f"{instance.id} {instance.state} but its run is {run_state}")
        else:
            active = [t for t in snap.tasks.get(instance.id, []) if t.state in ACTIVE_TASK_STATES]
            timers = [t for t in snap.timers.get(instance.id, []) if t.fired_at is None]
            keys = [f"task:{t.id}:" for t in active] + [f"timer:{t.id}:" for t in timers]
            if len(keys) != 1:
                check.offenders.append(f"{instance.id} {instance.state} waits on {len(keys)} things (tasks/timers), run {run_state}")
            elif run_state != "PAUSED" or not pause_key.startswith(keys[0]):
                check.offenders.append(f"{instance.id} waits on {keys[0]} but its run is {run_state} {pause_key!r}")
    return check


def check_no_stuck_runs(snap: Snapshot) -> Check:
    """No run of ours Running or Pending in Prefect without a live lease; none left Scheduled."""
    check = Check("no run stuck Running/Pending without a live lease (none Scheduled)")
    for run in snap.runs:
        state = run["state_type"]
        if state in ("RUNNING", "PENDING"):
            lease = snap.leases.get(run["id"])
            if lease is None or lease.leased_until <= snap.now:
                check.offenders.append(f"run {run['id']} {state}, lease {'none' if lease is None else 'expired'}")
        elif state == "SCHEDULED":
            check.offenders.append(f"run {run['id']} still SCHEDULED ({run['state_name']})")
    return check


def _output(tasks: list[Any], step: str, rnd: int) -> dict[str, Any] | None:
    found = [t for t in tasks if t.step_key == step and t.round == rnd and t.state == "completed"]
    return found[0].output if found else None


def _round_justified(instance_id: str, tasks: list[Any], results: list[Any], timers: list[Any], step: str, rnd: int) -> bool:
    """Return whether the flow had a reason to open this round of a looping step."""
    if step == "inspect":
        return (_output(tasks, "deduction_approval", rnd - 1) or {}).get("decision") == "reject"
    if step == "deduction_approval":
        inspection = _output(tasks, "inspect", rnd) or {}
        return inspection.get("condition") == "damaged" and float(inspection.get("deduction") or 0) > 0
    if step == "answer_inquiry":
        answer = _output(tasks, "answer_inquiry", rnd - 1) or {}
        return answer.get("outcome") == "ordered" and not (answer.get("order_id") and answer.get("order_lines"))
    if step == "shortage_decision":
        decision = (_output(tasks, "shortage_decision", rnd - 1) or {}).get("decision")
        stock = next((r.result for r in results if r.key == f"{instance_id}:stock_check:{rnd}"), None)
        fired = any(t.step_key == "stock_check" and t.round == rnd and t.fired_at is not None for t in timers)
        return (decision in ("transfer_from_store", "partial_ship") or (decision == "backorder" and fired)) \
            and stock is not None and not stock["reserved"]
    return False


def check_tasks_once(snap: Snapshot) -> Check:
    """One task per (instance, step, round, lane); rounds 1..n only when the flow had a reason; one active task at most."""
    check = Check("no task duplicated, no extra round")
    for instance_id, tasks in snap.tasks.items():
        keys = Counter((t.step_key, t.round, t.lane) for t in tasks)
        check.offenders += [f"{instance_id} {key} ×{n}" for key, n in keys.items() if n > 1]
        active = [t.id for t in tasks if t.state in ACTIVE_TASK_STATES]
        if len(active) > 1:
            check.offenders.append(f"{instance_id} has {len(active)} active tasks {active}")
        instance = snap.instances[instance_id]
        if instance.ended_at is not None:
            check.offenders += [f"{instance_id} task {t.id} ({t.step_key}) created after the instance ended"
                                for t in tasks if t.created_at > instance.ended_at]
        rounds: dict[str, set[int]] = defaultdict(set)
        for t in tasks:
            rounds[t.step_key].add(t.round)
        for step, seen in rounds.items():
            if seen != set(range(1, max(seen) + 1)):
                check.offenders.append(f"{instance_id} {step} rounds {sorted(seen)} not consecutive")
            for rnd in sorted(seen):
                first_of_step = rnd == 1 and step != "deduction_approval"
                if not first_of_step and (step not in LOOPING_STEPS or not _round_justified(
                        instance_id, tasks, snap.results.get(instance_id, []), snap.timers.get(instance_id, []), step, rnd)):
                    check.offenders.append(f"{instance_id} {step} round {rnd} without a reason")
    return check


def check_refunds_once(snap: Snapshot) -> Check:
    """At most one refund per instance, booked once in the ledger, for the amount less the deduction; one iff refunded."""
    check = Check("no refund duplicated (refunds ≤ 1 per instance, ledger matches)")
    by_instance: dict[str, list[Any]] = defaultdict(list)
    for refund in snap.refunds:
        by_instance[refund.instance_id].append(refund)
    for instance in snap.instances.values():
        if instance.process_key != "returns_exchange":
            continue
        refunds = by_instance.get(instance.id, [])
        issued = [e for e in snap.events.get(instance.id, []) if e.type == "refund.issued"]
        stored = next((r.result for r in snap.results.get(instance.id, []) if r.step_key == "refund"), None)
        refunded = (instance.result or {}).get("outcome") == "refunded"
        if len(refunds) > 1 or len(issued) != len(refunds) or (refunded and len(refunds) != 1) or (refunds and instance.params["kind"] != "return"):
            check.offenders.append(f"{instance.id}: {len(refunds)} refund(s), {len(issued)} refund.issued event(s), outcome {(instance.result or {}).get('outcome')}")
            continue
        for refund in refunds:
            deduction = Decimal(str(refund.deduction))
            expected = max(Decimal(str(instance.params["amount"])) - deduction, Decimal(0))
            if refund.provider_ref != f"ledger:refund-{instance.id}" or Decimal(str(refund.amount)) != expected \
                    or stored is None or stored.get("refund_id") != refund.id:
                check.offenders.append(f"{instance.id}: refund {refund.id} {refund.amount} ref {refund.provider_ref} vs step result {stored}")
    return check


def check_publish_once(snap: Snapshot) -> Check:
    check = Check("no publish duplicated (catalog_entries unique)")
    counts = Counter((c.instance_id, c.kind, c.ref) for c in snap.catalog)
    check.offenders = [f"{key} ×{n}" for key, n in counts.items() if n > 1]
    return check


def check_starts_once(snap: Snapshot, planned: list[Planned]) -> Check:
    """Each planned instance exists once with one flow run; no child started twice."""
    check = Check("no instance, run or child start duplicated; every start landed")
    by_key = Counter((i.process_key, i.business_key) for i in snap.instances.values())
    for item in planned:
        if by_key[(item.process, item.business_key)] != 1:
            check.offenders.append(f"{item.business_key}: {by_key[(item.process, item.business_key)]} instance(s)")
    runs_per_instance = Counter(str(run["parameters"].get("instance_id")) for run in snap.runs)
    for instance in snap.instances.values():
        if instance.process_key in PROCESSES and runs_per_instance[instance.id] != 1:
            check.offenders.append(f"{instance.id}: {runs_per_instance[instance.id]} flow run(s) in Prefect")
    children = Counter((i.parent_id, i.parent_step, i.business_key) for i in snap.instances.values() if i.parent_id)
    check.offenders += [f"child {key} ×{n}" for key, n in children.items() if n > 1]
    return check


def check_stock_once(snap: Snapshot) -> Check:
    """One reservation per order, applied once and released at most once: stock = initial − active reservations."""
    check = Check("no stock reservation applied twice (stock = initial − active reservations)")
    active: Counter[str] = Counter()
    per_instance: dict[str, list[Any]] = defaultdict(list)
    for row in snap.reservations:
        per_instance[row.instance_id].append(row)
        if row.released_at is None:
            active[row.sku] += row.quantity
    for sku, initial in SKUS.items():
        if snap.skus.get(sku) != initial - active[sku] or snap.skus.get(sku, 0) < 0:
            check.offenders.append(f"{sku}: stock {snap.skus.get(sku)} ≠ {initial} − {active[sku]} reserved")
    for instance in snap.instances.values():
        if instance.process_key != "presales_order":
            continue
        rows = per_instance.get(instance.id, [])
        orders = {row.order_key for row in rows}
        events = snap.events.get(instance.id, [])
        reserved = [e for e in events if e.type == "stock.reserved"]
        released = sum(line["quantity"] for e in events if e.type == "stock.released" for line in e.data["lines"])
        outcome = (instance.result or {}).get("outcome")
        if len(orders) > 1 or len(reserved) != len(orders):
            check.offenders.append(f"{instance.id}: {len(orders)} reservation(s) {sorted(orders)}, {len(reserved)} stock.reserved event(s)")
        if released != sum(row.quantity for row in rows if row.released_at is not None):
            check.offenders.append(f"{instance.id}: released {released} in events vs rows")
        if (outcome in ("shipped", "picked_up") and not rows) or (outcome in ("no_order", "cancelled") and rows) \
                or (outcome == "not_collected" and any(row.released_at is None for row in rows)):
            check.offenders.append(f"{instance.id}: outcome {outcome} with {len(rows)} reservation line(s)")
    return check


def check_completions_kept(snap: Snapshot, ledger: list[Completion]) -> Check:
    check = Check("every completion answered 200 is in the DB with its output")
    tasks = {t.id: t for rows in snap.tasks.values() for t in rows}
    for done in ledger:
        task = tasks.get(done.task_id)
        if task is None or task.state != "completed" or task.output != done.data or task.completed_by != done.by:
            check.offenders.append(f"task {done.task_id} ({done.step}): {task.state if task else 'missing'}, output {task.output if task else None}")
    return check


def check_completions_resumed(snap: Snapshot, ledger: list[Completion]) -> Check:
    """The resume of every 200 completion was delivered and the instance moved past the step."""
    check = Check("every completion answered 200 resumed its flow (moved past it, outbox delivered)")
    tasks = {t.id: t for rows in snap.tasks.values() for t in rows}
    resumes = defaultdict(list)
    for message in snap.outbox:
        if message.kind == "resume_run" and message.task_id:
            resumes[message.task_id].append(message)
    for done in ledger:
        task, instance = tasks.get(done.task_id), snap.instances.get(done.instance_id)
        if task is None or instance is None or task.completed_at is None:
            check.offenders.append(f"task {done.task_id}: missing")
            continue
        delivered = [m for m in resumes.get(done.task_id, []) if m.delivered_at is not None]
        after = task.completed_at
        moved = instance.state in ("completed", "cancelled", "failed") \
            or any(t.created_at >= after for t in snap.tasks.get(instance.id, []) if t.id != task.id) \
            or any(r.created_at >= after for r in snap.results.get(instance.id, [])) \
            or any(t.created_at >= after for t in snap.timers.get(instance.id, []))
        if not delivered or not moved:
            check.offenders.append(f"task {done.task_id} ({done.step} of {done.instance_id}): "
                                   f"resume {'delivered' if delivered else 'NOT delivered'}, instance {'moved on' if moved else 'did NOT move on'}")
    return check


def check_outbox_drained(snap: Snapshot) -> Check:
    check = Check("outbox drained (nothing undelivered, nothing given up)")
    check.offenders = [f"message {m.id} {m.kind} {m.instance_id}: {'failed' if m.failed_at else 'undelivered'} ({(m.last_error or '')[:100]})"
                       for m in snap.outbox if m.delivered_at is None]
    return check


def run_checks(snap: Snapshot, *, planned: list[Planned], ledger: list[Completion]) -> list[Check]:
    return [
        check_settled(snap), check_no_stuck_runs(snap), check_tasks_once(snap), check_refunds_once(snap),
        check_publish_once(snap), check_starts_once(snap, planned), check_stock_once(snap),
        check_completions_kept(snap, ledger), check_completions_resumed(snap, ledger), check_outbox_drained(snap),
    ]


# --------------------------------------------------------------------------- one run


def seed_skus(database_url: str) -> None:
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.shop.inventory import upsert_sku

    with session_scope(database_url) as session:
        for sku, stock in SKUS.items():
            upsert_sku(session, sku=sku, name=f"混沌测试 {sku}", online_price=Decimal("99.00"), offline_price=Decimal("109.00"), stock=stock)


def run(db: str = "sqlite", *, instances: int = 40, duration: float = 180, seed: int = 1, kill_every: tuple[float, float] = (8, 20),
        plan: Sequence[tuple[float, str]] | None = None, restart_postgresql: bool | None = None, drain: float | None = None,
        settle_timeout: float = 120, keep_data: bool = False) -> dict[str, Any]:
    """Start a stack, drive it under chaos, settle, check; return the figures (checks included)."""
    targets = [*TARGETS, *(["postgresql"] if (db == "postgresql" if restart_postgresql is None else restart_postgresql) else [])]
    drain = max(20.0, duration / 4) if drain is None else drain
    load_before, wall = loadavg(), time.monotonic()
    planned = plan_instances(seed, instances)
    ledger: list[Completion] = []
    tally, lock, staff_stop, starter_stop = Tally(), threading.Lock(), threading.Event(), threading.Event()
    figures: dict[str, Any] = {"db": db, "seed": seed, "instances": instances, "duration": duration, "targets": targets,
                               "kill_every": kill_every, "plan": plan, "load_before": load_before}
    with isolated_stack(db, users={**USERS, "shop": ("customer_service",)}, env=CHAOS_ENV, keep_data=keep_data) as stack:
        figures["startup"], figures["data_dir"] = dict(stack.timings), str(stack.data_dir)
        seed_skus(stack.database_url)
        people = {name: Person(stack.api_url, name, stack.tokens[name], tally) for name in [*USERS, "shop"]}
        starter = Starter(people["shop"], planned, database_url=stack.database_url, spread=duration * 0.5, stop=starter_stop)
        staff = [StaffThread(people[name], seed=seed, ledger=ledger, lock=lock, stop=staff_stop) for name in USERS]
        chaos = Chaos(stack, seed=seed, duration=duration, kill_every=kill_every, targets=targets, plan=plan)
        try:
            for thread in (starter, *staff, chaos):
                thread.start()
            chaos.join(duration + 600)
            began_settle = time.monotonic()
            for service in stack.services().values():  # whatever a failed restart left down
                if not service.running():
                    restart(service)
            if db == "postgresql":
                wait_for_database(stack.database_url)
            starter.join(max(0.0, duration * 0.5 + 180 - (time.monotonic() - chaos.began)))
            deadline = time.monotonic() + drain
            while time.monotonic() < deadline and retry_db(lambda: unfinished_for_staff(stack), what="counting") > 0:
                time.sleep(1)
        finally:
            starter_stop.set()
            staff_stop.set()
            for thread in (starter, *staff):
                thread.join(150)
            for person in people.values():
                person.close()
        figures["drain_s"] = round(time.monotonic() - began_settle, 1)
        figures["settle_s"], figures["still_moving"] = wait_settled(stack, timeout=settle_timeout)
        snap = retry_db(lambda: take_snapshot(stack), what="reading the final state")
        figures["checks"] = run_checks(snap, planned=planned, ledger=ledger)
        figures["kills"], figures["chaos_error"] = chaos.kills, repr(chaos.error) if chaos.error else None
        figures["starts"] = Counter(starter.started.values())
        figures["counts"] = counts(snap, ledger, tally)
        figures["running_while_waiting"] = [
            i.id for i in snap.instances.values() if i.state == "running" and i.process_key in PROCESSES]
    figures["wall_s"] = round(time.monotonic() - wall, 1)
    figures["logs"] = {name: {k: r[k] for k in ("errors", "warnings")} for name, r in stack.log_report.items()}
    figures["first_errors"] = {name: r["first_error_context"] for name, r in stack.log_report.items() if r["first_error_context"]}
    figures["settings"] = {k.removeprefix("ECOMFLOW_").lower(): v for k, v in CHAOS_ENV.items()}
    passed = all(c.passed for c in figures["checks"]) and not figures["chaos_error"]
    if passed and not keep_data:
        # The stack keeps a data dir whose logs have ERROR lines; killed processes always leave some.
        shutil.rmtree(stack.data_dir, ignore_errors=True)
    else:
        print(f"[chaos] data dir kept: {stack.data_dir}", file=sys.stderr)
    return figures


def counts(snap: Snapshot, ledger: list[Completion], tally: Tally) -> dict[str, Any]:
    ours = [i for i in snap.instances.values() if i.process_key in PROCESSES]
    tasks = [t for rows in snap.tasks.values() for t in rows]
    return {
        "instances": Counter(i.process_key for i in ours),
        "instance states": Counter(i.state for i in ours),
        "outcomes": Counter((i.result or {}).get("outcome") for i in ours if i.result),
        "tasks": len(tasks),
        "steps completed": sum(t.state == "completed" for t in tasks),
        "completes answered 200": len(ledger),
        "refunds": len(snap.refunds),
        "reservation lines": len(snap.reservations),
        "rescheduled runs": sum(1 for rows in snap.events.values() for e in rows if e.type == "instance.run_rescheduled"),
        **tally.snapshot(),
    }


# --------------------------------------------------------------------------- report


def check_rows(checks: list[Check], limit: int = 8) -> list[tuple[str, str]]:
    rows = []
    for check in checks:
        value = "PASS" if check.passed else f"FAIL ({len(check.offenders)}): " + "; ".join(check.offenders[:limit])
        rows.append((f"check: {check.name}", value))
    return rows


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    c = figures["counts"]
    kinds = Counter(k.what for k in figures["kills"] if k.injected)
    dead = [f"{k.what} at {k.at_s} s ({k.how})" for k in figures["kills"] if not k.injected]
    return [
        ("instances started (returns / presales)", f"{c['instances'].get('returns_exchange', 0)} / {c['instances'].get('presales_order', 0)} "
                                                   f"({', '.join(f'{n} {how}' for how, n in figures['starts'].items())})"),
        ("chaos: seed / duration / kill interval / targets", f"{figures['seed']} / {figures['duration']} s / " + (
            "a fixed plan" if figures["plan"] else f"{figures['kill_every'][0]}–{figures['kill_every'][1]} s") + f" / {', '.join(figures['targets'])}"),
        ("kills done", f"{sum(kinds.values())} ({', '.join(f'{w} {n}' for w, n in sorted(kinds.items()))})"),
        ("parts found dead that the chaos did not kill (restarted)", "; ".join(dead) or "none"),
        ("instance states at the end", ", ".join(f"{s} {n}" for s, n in sorted(c["instance states"].items()))),
        ("outcomes", ", ".join(f"{o} {n}" for o, n in sorted(c["outcomes"].items()))),
        ("steps completed (tasks) / completes answered 200", f"{c['steps completed']} / {c['completes answered 200']} "
                                                             f"({c.get('completes answered 200 after a retry', 0)} after a retry)"),
        ("requests / retries / 5xx / connection errors / gave up", " / ".join(
            str(c.get(k, 0)) for k in ("requests", "retries", "5xx", "connection errors", "gave up"))),
        ("claims lost to a colleague / answered 409 but mine / refused by four-eyes",
         f"{c.get('claims lost to a colleague', 0)} / {c.get('claims answered 409 but mine', 0)} / "
         f"{c.get('claims refused (FourEyesViolation)', 0)}"),
        ("runs rescheduled after a lost lease", str(c["rescheduled runs"])),
        ("refunds / stock reservation lines", f"{c['refunds']} / {c['reservation lines']}"),
        ("drain (staff finish) / settle", f"{figures['drain_s']} s / {figures['settle_s']} s"
                                          + (f" (still moving: {figures['still_moving']})" if any(figures['still_moving'].values()) else "")),
        ("wall time", f"{figures['wall_s']} s"),
        *closing_rows(figures),
        *check_rows(figures["checks"]),
    ]


def print_report(figures: dict[str, Any]) -> None:
    print(f"{'#':>3}  {'at (s)':>7}  {'clock':<8}  {'what':<11} {'how':<22} back after (s)")
    for n, kill in enumerate(figures["kills"], 1):
        print(f"{n:>3}  {kill.at_s:>7.1f}  {kill.clock:<8}  {kill.what:<11} {kill.how:<22} {kill.back_after_s} {kill.note}")
    if figures["chaos_error"]:
        print(f"chaos thread stopped on: {figures['chaos_error']}")
    rows = table(figures)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for check in figures["checks"]:
        for offender in check.offenders[8:40]:
            print(f"    {check.name[:40]}…: {offender}")
    if figures["running_while_waiting"]:
        print(f"note: {len(figures['running_while_waiting'])} active instance(s) say 'running' while their run waits: "
              f"{figures['running_while_waiting'][:10]}")


def parse_interval(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    interval = (float(low), float(high or low))
    if not 0 < interval[0] <= interval[1]:
        raise argparse.ArgumentTypeError(f"--kill-every wants A-B seconds with 0 < A <= B, not {text!r}")
    return interval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite", help="ecomflow's database (Prefect keeps SQLite)")
    parser.add_argument("--instances", type=int, default=40, help="instances to start, half returns, half pre-sales orders")
    parser.add_argument("--duration", type=float, default=180, help="seconds of chaos (instances start in the first half)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the kills, the instances and every person's choices")
    parser.add_argument("--kill-every", type=parse_interval, default=(8.0, 20.0), metavar="A-B", help="seconds between kills")
    parser.add_argument("--no-pg-restart", action="store_true", help="on postgresql, do not restart PostgreSQL itself")
    parser.add_argument("--drain", type=float, default=None, help="seconds staff keep working after the chaos (default duration/4, ≥20)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs, SQLite files)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    figures = run(args.db, instances=args.instances, duration=args.duration, seed=args.seed, kill_every=args.kill_every,
                  restart_postgresql=False if args.no_pg_restart else None, drain=args.drain, keep_data=args.keep)
    print_report(figures)
    failed = [c.name for c in figures["checks"] if not c.passed]
    if not args.no_record:
        notes = report_notes(figures, CHAOS_ENV)
        notes.append("kills: " + "; ".join(f"{k.what} at {k.at_s} s back after {k.back_after_s} s" for k in figures["kills"]))
        append_results("Chaos", db=args.db, rows=table(figures), notes=notes, load_before=figures["load_before"])
    print("RESULT:", "PASS" if not failed and not figures["chaos_error"] else f"FAIL ({', '.join(failed) or figures['chaos_error']})")
    return 1 if failed or figures["chaos_error"] else 0


if __name__ == "__main__":
    sys.exit(main())
