"""The verdicts of a chaos run over the settled final state: nothing lost, nothing done twice, nothing stuck.

One snapshot of our database and of Prefect's runs is taken after the system settled; each check
reads it and names every offender.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench.chaos_staff import PROCESSES, SKUS, Completion, Planned
from bench.harness.prefect_api import call_patiently
from bench.harness.stack import BenchStack

ACTIVE_TASK_STATES = ("open", "claimed")
# Steps that may run in more than one round, and what makes round r+1 legitimate.
LOOPING_STEPS = {"inspect", "deduction_approval", "answer_inquiry", "shortage_decision"}


@dataclass
class Check:
    """One verdict over the final state."""

    name: str
    offenders: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return not self.offenders


def prefect_runs(stack: BenchStack) -> list[dict[str, Any]]:
    """Every flow run of our two processes, read page by page (Prefect answers 503 while its SQLite is locked)."""
    runs: list[dict[str, Any]] = []
    while True:
        body = {"flows": {"name": {"any_": list(PROCESSES)}}, "limit": 200, "offset": len(runs), "sort": "ID_DESC"}
        page = call_patiently(stack.prefect_api, "POST", "/flow_runs/filter", json=body)
        runs.extend(page)
        if len(page) < 200:
            return runs


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

    from ecomflow.engine.db.models import (
        AuditEvent,
        CatalogEntry,
        FlowRunLease,
        HumanTask,
        OutboxMessage,
        ProcessInstance,
        Refund,
        StepResult,
        StockBalance,
        StockMovement,
        Timer,
    )
    from ecomflow.engine.db.sessions import session_scope

    def grouped(rows: Iterable[Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            out[row.instance_id].append(row)
        return out

    runs = prefect_runs(stack)
    with session_scope(stack.database_url) as session:
        kinds = ("refund.issued", "stock.reserve", "stock.release", "instance.failed", "instance.run_rescheduled")
        return Snapshot(
            instances={i.id: i for i in session.scalars(select(ProcessInstance))},
            tasks=grouped(session.scalars(select(HumanTask).order_by(HumanTask.created_at))),
            results=grouped(session.scalars(select(StepResult))),
            timers=grouped(session.scalars(select(Timer))),
            outbox=list(session.scalars(select(OutboxMessage))),
            refunds=list(session.scalars(select(Refund))),
            reservations=list(session.scalars(select(StockMovement))),
            skus={row.sku: row.on_hand - row.reserved for row in session.scalars(select(StockBalance))},
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
                check.offenders.append(
                    f"{instance.id} {instance.state} waits on {len(keys)} things (tasks/timers), run {run_state}"
                )
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


def _round_justified(
    instance_id: str, tasks: list[Any], results: list[Any], timers: list[Any], step: str, rnd: int
) -> bool:
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
        return (
            (decision in ("transfer_from_store", "partial_ship") or (decision == "backorder" and fired))
            and stock is not None
            and not stock["reserved"]
        )
    return False


def check_tasks_once(snap: Snapshot) -> Check:
    """One task per (instance, step, round, lane); rounds 1..n only with the flow's reason; one active task at most."""
    check = Check("no task duplicated, no extra round")
    for instance_id, tasks in snap.tasks.items():
        keys = Counter((t.step_key, t.round, t.lane) for t in tasks)
        check.offenders += [f"{instance_id} {key} ×{n}" for key, n in keys.items() if n > 1]
        active = [t.id for t in tasks if t.state in ACTIVE_TASK_STATES]
        if len(active) > 1:
            check.offenders.append(f"{instance_id} has {len(active)} active tasks {active}")
        instance = snap.instances[instance_id]
        if instance.ended_at is not None:
            check.offenders += [
                f"{instance_id} task {t.id} ({t.step_key}) created after the instance ended"
                for t in tasks
                if t.created_at > instance.ended_at
            ]
        rounds: dict[str, set[int]] = defaultdict(set)
        for t in tasks:
            rounds[t.step_key].add(t.round)
        for step, seen in rounds.items():
            if seen != set(range(1, max(seen) + 1)):
                check.offenders.append(f"{instance_id} {step} rounds {sorted(seen)} not consecutive")
            for rnd in sorted(seen):
                first_of_step = rnd == 1 and step != "deduction_approval"
                if not first_of_step and (
                    step not in LOOPING_STEPS
                    or not _round_justified(
                        instance_id,
                        tasks,
                        snap.results.get(instance_id, []),
                        snap.timers.get(instance_id, []),
                        step,
                        rnd,
                    )
                ):
                    check.offenders.append(f"{instance_id} {step} round {rnd} without a reason")
    return check


def check_refunds_once(snap: Snapshot) -> Check:
    """At most one refund per instance, booked once in the ledger, for the amount less deduction; one iff refunded."""
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
        if (
            len(refunds) > 1
            or len(issued) != len(refunds)
            or (refunded and len(refunds) != 1)
            or (refunds and instance.params["kind"] != "return")
        ):
            check.offenders.append(
                f"{instance.id}: {len(refunds)} refund(s), {len(issued)} refund.issued event(s), "
                f"outcome {(instance.result or {}).get('outcome')}"
            )
            continue
        for refund in refunds:
            deduction = Decimal(str(refund.deduction))
            expected = max(Decimal(str(instance.params["amount"])) - deduction, Decimal(0))
            if (
                refund.provider_ref != f"ledger:refund-{instance.id}"
                or Decimal(str(refund.amount)) != expected
                or stored is None
                or stored.get("refund_id") != refund.id
            ):
                check.offenders.append(
                    f"{instance.id}: refund {refund.id} {refund.amount} ref {refund.provider_ref} "
                    f"vs step result {stored}"
                )
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
    """Each movement once per business key; available = initial − reserved − shipped; one reservation per order."""
    check = Check("no stock movement applied twice (available = initial − held − shipped)")
    taken: Counter[str] = Counter()
    per_instance: dict[str, list[Any]] = defaultdict(list)
    seen: Counter[tuple[str, str]] = Counter()
    for row in snap.reservations:  # the ledger's movements
        seen[(row.kind, row.business_key)] += 1
        if row.instance_id:
            per_instance[row.instance_id].append(row)
        if row.kind == "reserve":
            taken[row.sku] += row.quantity
        elif row.kind == "release":
            taken[row.sku] -= row.quantity
    check.offenders += [f"movement {kind} {key} ×{n}" for (kind, key), n in seen.items() if n > 1]
    for sku, initial in SKUS.items():
        if snap.skus.get(sku, 0) != initial - taken[sku] or snap.skus.get(sku, 0) < 0:
            check.offenders.append(f"{sku}: available {snap.skus.get(sku)} ≠ {initial} − {taken[sku]} taken")
    for instance in snap.instances.values():
        if instance.process_key != "presales_order":
            continue
        rows = per_instance.get(instance.id, [])
        reserves = [row for row in rows if row.kind == "reserve"]
        orders = {row.business_key.rsplit(":", 1)[0] for row in reserves}
        events = snap.events.get(instance.id, [])
        reserved_events = [e for e in events if e.type == "stock.reserve"]
        outcome = (instance.result or {}).get("outcome")
        if len(orders) > 1 or len(reserved_events) != len(reserves):
            check.offenders.append(
                f"{instance.id}: {len(orders)} reservation(s) {sorted(orders)}, "
                f"{len(reserved_events)} stock.reserve event(s) for {len(reserves)} line(s)"
            )
        released = {row.business_key for row in rows if row.kind == "release"}
        if (
            (outcome in ("shipped", "picked_up") and not reserves)
            or (outcome in ("no_order", "cancelled") and reserves)
            or (outcome == "not_collected" and any(row.business_key not in released for row in reserves))
        ):
            check.offenders.append(f"{instance.id}: outcome {outcome} with {len(reserves)} reserved line(s)")
    return check


def check_completions_kept(snap: Snapshot, ledger: list[Completion]) -> Check:
    check = Check("every completion answered 200 is in the DB with its output")
    tasks = {t.id: t for rows in snap.tasks.values() for t in rows}
    for done in ledger:
        task = tasks.get(done.task_id)
        if task is None or task.state != "completed" or task.output != done.data or task.completed_by != done.by:
            check.offenders.append(
                f"task {done.task_id} ({done.step}): {task.state if task else 'missing'}, "
                f"output {task.output if task else None}"
            )
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
        moved = (
            instance.state in ("completed", "cancelled", "failed")
            or any(t.created_at >= after for t in snap.tasks.get(instance.id, []) if t.id != task.id)
            or any(r.created_at >= after for r in snap.results.get(instance.id, []))
            or any(t.created_at >= after for t in snap.timers.get(instance.id, []))
        )
        if not delivered or not moved:
            check.offenders.append(
                f"task {done.task_id} ({done.step} of {done.instance_id}): "
                f"resume {'delivered' if delivered else 'NOT delivered'}, "
                f"instance {'moved on' if moved else 'did NOT move on'}"
            )
    return check


def check_outbox_drained(snap: Snapshot) -> Check:
    check = Check("outbox drained (nothing undelivered, nothing given up)")
    check.offenders = [
        f"message {m.id} {m.kind} {m.instance_id}: "
        f"{'failed' if m.failed_at else 'undelivered'} ({(m.last_error or '')[:100]})"
        for m in snap.outbox
        if m.delivered_at is None
    ]
    return check


def run_checks(snap: Snapshot, *, planned: list[Planned], ledger: list[Completion]) -> list[Check]:
    return [
        check_settled(snap),
        check_no_stuck_runs(snap),
        check_tasks_once(snap),
        check_refunds_once(snap),
        check_publish_once(snap),
        check_starts_once(snap, planned),
        check_stock_once(snap),
        check_completions_kept(snap, ledger),
        check_completions_resumed(snap, ledger),
        check_outbox_drained(snap),
    ]
