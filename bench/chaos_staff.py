"""The people of a chaos run: staff working their inboxes over HTTP as people do, and the shop front starting instances.

Staff read a task, claim it and submit the form; on a connection error or a 5xx they wait and try
again (the complete carries an Idempotency-Key, as a browser retrying a submit would), and every
completion answered 200 is written down. What each person enters is seeded per instance, step and
round, so a run with the same seed makes the same choices.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ecomflow.sample_data import return_params

PROCESSES = ("returns_exchange", "presales_order")
USERS = {
    "cs1": ("customer_service",),
    "cs2": ("customer_service",),
    "wh1": ("warehouse",),
    "wh2": ("warehouse",),
    "ops1": ("operations",),
}
# SKU → initial stock: plenty, some, scarce (shortages part-way), none (always short).
SKUS = {"CHAOS-TEE": 100_000, "CHAOS-CAP": 500, "CHAOS-SCARCE": 6, "CHAOS-GONE": 0}
SKU_WEIGHTS = (("CHAOS-TEE", 50), ("CHAOS-CAP", 30), ("CHAOS-SCARCE", 15), ("CHAOS-GONE", 5))


class Tally:
    """Thread-safe counters of what the staff saw."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        """Count one more (or n more) of key."""
        with self._lock:
            self._counts[key] += n

    def snapshot(self) -> dict[str, int]:
        """Return the counts so far."""
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
                    print(
                        f"[chaos] {self.name} gave up {method} {path} after {attempt} attempts: {last}", file=sys.stderr
                    )
                return None, attempt
            self.tally.add("retries")
            time.sleep(min(3.0, 0.2 * 2 ** min(attempt - 1, 4)) * random.uniform(0.5, 1.0))

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


def form_data(*, seed: int, business_key: str, step: str, rnd: int) -> dict[str, Any]:
    """What a person enters for a step: seeded per (instance, step, round), so each run makes the same choices."""
    rng = random.Random(f"{seed}/{business_key}/{step}/{rnd}")

    def approval(p: float) -> dict[str, Any]:
        return (
            {"decision": "approve", "comment": "同意"}
            if rng.random() < p
            else {"decision": "reject", "comment": "不符合条件"}
        )

    number = f"{rng.getrandbits(40):012d}"
    if step == "cs_review":
        return approval(0.9)
    if step == "goodwill_approval":
        return approval(0.8)
    if step == "deduction_approval":
        return approval(0.6 if rnd == 1 else 1.0)
    if step == "await_parcel":
        return {"return_tracking_no": f"SF{number}", "carrier": "SF", "return_shipping_cost": rng.choice([0, 8, 12])}
    if step == "inspect":
        if rnd == 1 and rng.random() < 0.3:
            return {
                "condition": "damaged",
                "restock": "no",
                "deduction": rng.choice([10, 20, 35.5]),
                "notes": "外包装破损",
            }
        return {"condition": "ok", "restock": "yes"}
    if step in ("reship", "ship"):
        return {"carrier": "SF", "tracking_no": f"SF{number}"}
    if step == "follow_up":
        return {"contact_result": rng.choice(["resolved", "unreachable", "escalated"]), "notes": "已电话回访"}
    if step == "answer_inquiry":
        roll = rng.random()
        if rnd == 1 and roll < 0.08:
            return {"outcome": "no_order", "recommended_skus": ["CHAOS-TEE"]}
        skus, weights = zip(*SKU_WEIGHTS, strict=True)
        lines = [
            {"sku": rng.choices(skus, weights)[0], "quantity": rng.randint(1, 3)} for _ in range(rng.randint(1, 3))
        ]
        data: dict[str, Any] = {
            "outcome": "ordered",
            "order_id": f"ORD-{number}",
            "order_lines": lines,
            "fulfilment": "ship",
        }
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
            choice = rng.choices(
                ["partial_ship", "transfer_from_store", "cancel_order", "backorder"], [35, 25, 25, 15]
            )[0]
        return {"decision": choice, "notes": "按库存处理"}
    if step == "review_order":
        return {"result": "pass"}
    if step == "print_waybill":
        return {"waybill_no": f"WB{number}"}
    if step == "pick":
        return {"pick_list_no": f"PL{number}"}
    if step == "check_and_pack":
        return {"packages": rng.randint(1, 3), "weight_kg": round(rng.uniform(0.2, 5.0), 2)}
    if step == "prepare_pickup":
        return {"store": "上海南京西路店", "shelf_location": "A-03"}
    if step == "picked_up":
        return {"outcome": "picked_up" if rng.random() < 0.7 else "not_collected", "notes": "门店反馈"}
    raise ValueError(f"no form data for step {step}")


class StaffThread(threading.Thread):
    """A person working their inbox until told to stop: their claimed tasks first, then the open queue."""

    def __init__(
        self, person: Person, *, seed: int, ledger: list[Completion], lock: threading.Lock, stop: threading.Event
    ) -> None:
        super().__init__(name=f"staff-{person.name}", daemon=True)
        self.person, self.seed, self.ledger, self.lock, self.stop = person, seed, ledger, lock, stop
        self.rng = random.Random(f"{seed}/{person.name}")
        self.role = USERS[person.name][0]
        self.refused: set[str] = set()  # tasks the API will not let me do (four-eyes): left to colleagues

    def run(self) -> None:
        """Work tasks until told to stop, pausing when the inbox is empty."""
        while not self.stop.is_set():
            task = self._next_task()
            if task is None:
                self.stop.wait(0.3)
                continue
            self._work(task)

    def _next_task(self) -> dict[str, Any] | None:
        """Return one of the oldest tasks I may do: my claimed ones first, then my role's open queue."""
        # Operations are managers and see every queue: everyone works their own role's queue.
        for params in ({"state": "claimed", "mine": "true"}, {"state": "open", "role": self.role}):
            response, _ = self.person.call(
                "GET", "/tasks", params={**params, "limit": 20, "sort": "created"}, patience=10
            )
            if response is None or response.status_code != 200:
                continue
            items = [item for item in response.json()["items"] if item["id"] not in self.refused]
            if items:
                return self.rng.choice(items[:3])  # not always the oldest: colleagues collide now and then
        return None

    def _work(self, task: dict[str, Any]) -> None:
        """Read the task, claim it if open, and complete it with this person's seeded form data."""
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
                if (
                    again is None
                    or again.status_code != 200
                    or again.json()["assignee"] != me
                    or again.json()["state"] != "claimed"
                ):
                    tally.add("claims lost to a colleague")
                    return
                tally.add("claims answered 409 but mine")
            elif claimed.status_code != 200:
                tally.add(f"claim {claimed.status_code}")
                return
        elif detail["state"] != "claimed" or detail["assignee"] != me:
            return
        data = form_data(
            seed=self.seed, business_key=detail["context"]["business_key"], step=detail["step"], rnd=detail["round"]
        )
        self.stop.wait(self.rng.uniform(0.05, 0.3))  # reading and typing
        done, attempts = self.person.call(
            "POST",
            f"/tasks/{task['id']}/complete",
            json={"data": data},
            headers={"Idempotency-Key": f"chaos-{task['id']}"},
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
            self.ledger.append(
                Completion(
                    task_id=task["id"],
                    instance_id=detail["instance_id"],
                    step=detail["step"],
                    round=detail["round"],
                    by=me,
                    data=data,
                    attempts=attempts,
                )
            )
        if attempts > 1:
            tally.add("completes answered 200 after a retry")


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
                kind=rng.choices(["return_refund", "exchange"], [7, 3])[0],
                category=rng.choices(["normal", "fresh"], [85, 15])[0],  # fresh: ineligible, a goodwill approval
                amount=rng.choice([59.0, 129.0, 199.0, 459.0]),
            )
            roll = rng.random()
            rating = rng.choice([1, 2]) if roll < 0.25 else (5 if roll < 0.4 else None)
            planned.append(Planned("returns_exchange", f"CHAOS-{seed}-{number:04d}-R", params, rating))
        else:
            params = {
                "customer": f"buyer-{seed}-{number}",
                "question": "这款有货吗？今天能发吗？",
                "channel": rng.choice(["im", "phone"]),
            }
            planned.append(Planned("presales_order", f"CHAOS-{seed}-{number:04d}-P", params))
    return planned


def retry_db(action: Callable[[], Any], *, what: str, patience: float = 90) -> Any:
    """Run a database action, retrying while the database restarts."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return action()
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{what} kept failing: {exc}") from exc
            time.sleep(0.5)


class Starter(threading.Thread):
    """The shop front: starts the planned instances spread over `spread` seconds, retrying like staff."""

    def __init__(
        self, person: Person, planned: list[Planned], *, database_url: str, spread: float, stop: threading.Event
    ) -> None:
        super().__init__(name="starter", daemon=True)
        self.person, self.planned, self.database_url, self.spread, self.stop = (
            person,
            planned,
            database_url,
            spread,
            stop,
        )
        self.started: dict[str, str] = {}  # business key → how it was started

    def run(self) -> None:
        """Start each planned instance at its time in the spread, reporting a rating first where planned."""
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
                "POST",
                f"/processes/{item.process}/instances",
                json={"business_key": item.business_key, "params": item.params},
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
