"""Races in the engine: every claimer after every task, and the hand-over actions racing on one claimed task.

Each thread has its own connection and session and starts at a barrier; the database decides who wins.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage
from ecomflow.engine.db.sessions import make_engine, session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.errors import AlreadyClaimed, Conflict
from ecomflow.engine.events.outbox import RESUME_RUN
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import assign_task, claim_task, complete_task, delegate_task, release_task
from ecomflow.engine.tasks.step_tasks import open_task
from tests.conftest import BACKEND
from tests.factories import make_instance, make_user

# PostgreSQL takes the full crowd; SQLite serialises writers, so fewer threads show the same guarantee.
CLAIMERS = 64 if BACKEND == "postgresql" else 8
# Every claimer races for every task: fewer tasks on PostgreSQL keep its 64 racers per task (64,000 attempts
# took 82 s of that lane in stop 27's CI, its slowest test).
OPEN_TASKS = 400 if BACKEND == "postgresql" else 1000
# Measured on 2 cores: 64,000 claims one per transaction took 200 s, 25 to a transaction 23 s; the race is the same.
CLAIMS_PER_TRANSACTION = 25
HANDOVER_ROUNDS = 40
INSPECTION_OK = {"condition": "ok", "restock": "yes"}
INSPECTION_NO_RESTOCK = {"condition": "ok", "restock": "no"}


def _engine_with_a_connection_per_thread(url: str) -> Engine:
    """Return an engine set up as the app's, with a connection for every thread."""
    app_engine = make_engine(url)  # for SQLite: WAL, the busy timeout and BEGIN IMMEDIATE
    if BACKEND == "sqlite":
        return app_engine  # its pool of 15 outnumbers the 8 claimers
    # The app's pool stops at 30 connections; 64 claimers hold one each.
    return create_engine(app_engine.url, poolclass=NullPool)


def _open_tasks(count: int) -> list[str]:
    """Open `count` inspect tasks of one instance (one per round) as a flow would, in one transaction."""
    instance_id = make_instance()
    step = get_definitions().process("returns_exchange").step("inspect")
    with session_scope() as session:
        return [open_task(session, instance_id=instance_id, step=step, round=n).id for n in range(1, count + 1)]


def _run_together(jobs: list[Callable[[threading.Barrier], object]]) -> list[object]:
    """Run each job in its own thread, all released at once by a barrier; return their results in order."""
    # Bounded: a thread that dies before the barrier must fail the test, not hang it.
    start = threading.Barrier(len(jobs), timeout=120)
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(job, start) for job in jobs]
        return [future.result() for future in futures]


@dataclass
class ClaimerLog:
    """What one claimer saw: the tasks it won, and for every other one the refusal's type and the holder it named."""

    name: str
    won: list[str] = field(default_factory=list)
    refused: dict[str, tuple[type[Conflict], str | None]] = field(default_factory=dict)


def _in_batches(order: list[str], size: int) -> list[list[str]]:
    """Cut a claimer's shuffled order into batches, each sorted by id."""
    # Every transaction takes its row locks in ascending id order, so batches never deadlock on PostgreSQL.
    return [sorted(order[start : start + size]) for start in range(0, len(order), size)]


def _claim_each(engine: Engine, principal: Principal, order: list[str], start: threading.Barrier) -> ClaimerLog:
    """Try to claim every task, CLAIMS_PER_TRANSACTION per transaction, on one connection of its own."""
    log = ClaimerLog(principal.name)
    with engine.connect() as connection, Session(bind=connection) as session:
        start.wait()
        for batch in _in_batches(order, CLAIMS_PER_TRANSACTION):
            won = []
            for task_id in batch:
                try:
                    claim_task(session, task_id=task_id, principal=principal)
                    won.append(task_id)
                except Conflict as refusal:
                    # A refused claim wrote nothing: the batch goes on. Kept small: 63,000 tracebacks would slow all.
                    log.refused[task_id] = (type(refusal), refusal.about.get("assignee"))
            session.commit()
            log.won.extend(won)
    return log


def _claimed_events_by_task() -> dict[str, list[str]]:
    with session_scope() as session:
        rows = session.execute(select(AuditEvent.task_id, AuditEvent.actor).where(AuditEvent.type == "task.claimed"))
        actors: dict[str, list[str]] = {}
        for task_id, actor in rows:
            actors.setdefault(task_id, []).append(actor)
        return actors


def _rows(task_ids: list[str]) -> dict[str, tuple[str, str | None, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(HumanTask.id, HumanTask.state, HumanTask.assignee, HumanTask.version).where(
                HumanTask.id.in_(task_ids)
            )
        )
        return {task_id: (state, assignee, version) for task_id, state, assignee, version in rows}


def _single_winners(logs: list[ClaimerLog]) -> dict[str, str]:
    """Return each task's winner, asserting that no task has two."""
    winners: dict[str, list[str]] = {}
    for log in logs:
        for task_id in log.won:
            winners.setdefault(task_id, []).append(log.name)
    assert {task_id: names for task_id, names in winners.items() if len(names) > 1} == {}, "double claims"
    return {task_id: names[0] for task_id, names in winners.items()}


class TestEveryClaimerClaimsEveryTask:
    def test_each_task_has_exactly_one_winner(self, clean_db: str) -> None:
        claimers = [make_user(roles=("warehouse",))[0] for _ in range(CLAIMERS)]
        task_ids = _open_tasks(OPEN_TASKS)
        shuffler = random.Random(20261127)
        engine = _engine_with_a_connection_per_thread(clean_db)
        try:
            orders = [shuffler.sample(task_ids, len(task_ids)) for _ in claimers]
            logs = _run_together(
                [
                    lambda start, who=who, order=order: _claim_each(engine, who, order, start)
                    for who, order in zip(claimers, orders, strict=True)
                ]
            )
        finally:
            engine.dispose()

        winner = _single_winners(logs)
        assert sorted(winner) == sorted(task_ids), "some task was claimed by nobody"
        for log in logs:
            assert len(log.won) + len(log.refused) == OPEN_TASKS
            wrong = {task_id: why for task_id, why in log.refused.items() if why != (AlreadyClaimed, winner[task_id])}
            assert wrong == {}, f"{log.name} was refused otherwise than by AlreadyClaimed naming the winner"
        assert _rows(task_ids) == {task_id: ("claimed", winner[task_id], 2) for task_id in task_ids}
        assert _claimed_events_by_task() == {task_id: [winner[task_id]] for task_id in task_ids}


# --- complete, release, assign and delegate racing on one claimed task ---------------------------------------


@dataclass(frozen=True)
class TaskView:
    """The part of a task row the hand-over actions change."""

    state: str
    assignee: str | None
    version: int


@dataclass(frozen=True)
class HandOver:
    """One call in the race: what it does, who does it, and for assign/delegate whom the task goes to."""

    name: str
    kind: str
    actor: Principal
    target: str | None = None
    data: dict[str, str] | None = None

    def perform(self, session: Session, task_id: str) -> HumanTask:
        """Make this call against the engine."""
        if self.kind == "complete":
            # If-Match, as the inbox sends it: a form filled in on version 2 is refused once the task moved on.
            return complete_task(
                session,
                task_id=task_id,
                principal=self.actor,
                data=self.data,
                expected_version=2,
            )
        if self.kind == "release":
            return release_task(session, task_id=task_id, principal=self.actor, reason="race")
        if self.kind == "assign":
            return assign_task(session, task_id=task_id, principal=self.actor, user=self.target, reason="race")
        return delegate_task(session, task_id=task_id, principal=self.actor, user=self.target, reason="race")

    def expected_after(self, task: TaskView) -> TaskView | None:
        """Return the task after this call made alone on `task`, or None when the rules refuse it."""
        if self.kind == "complete":
            mine = task.state == "claimed" and task.assignee == self.actor.name and task.version == 2
            return TaskView("completed", task.assignee, task.version + 1) if mine else None
        if self.kind == "release":
            return TaskView("open", None, task.version + 1) if task.state == "claimed" else None
        if self.kind == "assign":
            return TaskView("claimed", self.target, task.version + 1) if task.state in ("open", "claimed") else None
        handing_on = task.state == "claimed" and task.assignee != self.target
        return TaskView("claimed", self.target, task.version + 1) if handing_on else None

    def expected_event_data(self, before: TaskView) -> dict[str, str | None]:
        """Return what this call's audit event must say about the task it found."""
        # Every move has the one shape of engine/tasks/moves.py.
        after = self.expected_after(before)
        return {
            "from": before.state,
            "to": after.state,
            "action": self.kind,
            "assignee": after.assignee,
            "previous_assignee": before.assignee,
        }


EVENT_OF_KIND = {
    "complete": "task.completed",
    "release": "task.released",
    "assign": "task.assigned",
    "delegate": "task.delegated",
}


@dataclass(frozen=True)
class HandOverCast:
    """The people in a hand-over race: the holder, a manager, and the two colleagues the task may go to."""

    holder: Principal
    manager: Principal
    assignee: Principal
    delegate: Principal

    def calls(self) -> list[HandOver]:
        """Two submits of the holder's form (a double click) and the manager's three hand-overs."""
        # The manager does the hand-overs: whatever order wins, every refusal is then a Conflict, never a 403.
        return [
            HandOver("complete-restock", "complete", self.holder, data=INSPECTION_OK),
            HandOver("complete-keep", "complete", self.holder, data=INSPECTION_NO_RESTOCK),
            HandOver("release", "release", self.manager),
            HandOver("assign", "assign", self.manager, target=self.assignee.name),
            HandOver("delegate", "delegate", self.manager, target=self.delegate.name),
        ]


def make_handover_cast() -> HandOverCast:
    """Create the holder, a manager and two warehouse colleagues."""
    return HandOverCast(
        holder=make_user(roles=("warehouse",))[0],
        manager=make_user(roles=("operations",))[0],
        assignee=make_user(roles=("warehouse",))[0],
        delegate=make_user(roles=("warehouse",))[0],
    )


def make_claimed_task(holder: Principal) -> str:
    """Open a fresh inspect task and let the holder claim it (version 2)."""
    [task_id] = _open_tasks(1)
    with session_scope() as session:
        claim_task(session, task_id=task_id, principal=holder)
    return task_id


@dataclass(frozen=True)
class RaceRecord:
    """What the database shows after a race on one task: its row, output, events after the claim, queued resumes."""

    row: TaskView
    output: dict[str, str] | None
    events: list[tuple[str, str, dict[str, Any]]]
    resumes: int


def read_race_record(task_id: str) -> RaceRecord:
    """Read what the database shows after a race on the task."""
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        events = session.execute(
            select(AuditEvent.type, AuditEvent.actor, AuditEvent.data)
            .where(AuditEvent.task_id == task_id, AuditEvent.type.not_in(["task.created", "task.claimed"]))
            .order_by(AuditEvent.id)
        ).all()
        resumes = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.task_id == task_id, OutboxMessage.kind == RESUME_RUN)
        )
        row = TaskView(task.state, task.assignee, task.version)
        return RaceRecord(row, task.output, [tuple(event) for event in events], resumes)


def check_one_serial_outcome(
    calls: list[HandOver], succeeded: set[str], record: RaceRecord, *, holder: str
) -> dict[str, TaskView]:
    """Assert the successes, replayed in event order, explain the row, events and outbox; return each one's result."""
    winners = [call for call in calls if call.name in succeeded]
    assert Counter(EVENT_OF_KIND[c.kind] for c in winners) == Counter(type for type, _, _ in record.events), (
        "audit events do not match the successful calls one to one",
        sorted(succeeded),
        record.events,
    )
    completions = [c for c in winners if c.kind == "complete"]
    assert len(completions) <= 1, "two completions"
    assert record.resumes == len(completions), "a queued resume without a completion, or a completion without one"
    assert record.output == (completions[0].data if completions else None), "the stored output is not the winner's"
    # Events are written after the row lock is taken, so their order is the commit order: replay the winners in it.
    task, results, remaining = TaskView("claimed", holder, 2), {}, list(winners)
    for type, actor, data in record.events:
        call = next((c for c in remaining if EVENT_OF_KIND[c.kind] == type and c.actor.name == actor), None)
        assert call is not None, f"a {type} event by {actor} that no successful call explains"
        remaining.remove(call)
        after = call.expected_after(task)
        assert after is not None, f"{call.name} succeeded on {task}, which the rules refuse"
        expected = call.expected_event_data(task)
        assert {key: data.get(key) for key in expected} == expected, (call.name, data)
        task = results[call.name] = after
    assert record.row == task
    return results


def _perform_once(engine: Engine, call: HandOver, task_id: str, start: threading.Barrier) -> Exception | None:
    """Make one call in its own transaction; return its refusal, or None if it succeeded."""
    with engine.connect() as connection, Session(bind=connection) as session:
        start.wait()
        try:
            call.perform(session, task_id)
            session.commit()
            return None
        except Exception as refusal:
            session.rollback()
            return refusal


class TestHandOversRacingOnOneClaimedTask:
    def test_every_race_ends_in_one_serial_outcome(self, clean_db: str) -> None:
        cast = make_handover_cast()
        calls = cast.calls()
        engine = _engine_with_a_connection_per_thread(clean_db)
        outcomes_seen: Counter[tuple[str, ...]] = Counter()
        try:
            for _ in range(HANDOVER_ROUNDS):
                task_id = make_claimed_task(cast.holder)
                results = _run_together([partial(_perform_once, engine, call, task_id) for call in calls])
                refusals = {call.name: r for call, r in zip(calls, results, strict=True) if r is not None}
                assert all(isinstance(r, Conflict) for r in refusals.values()), refusals
                succeeded = {call.name for call in calls} - set(refusals)
                check_one_serial_outcome(calls, succeeded, read_race_record(task_id), holder=cast.holder.name)
                outcomes_seen[tuple(sorted(succeeded))] += 1
        finally:
            engine.dispose()
        # Which outcomes occur depends on thread timing (a quiet machine may serialise every round the same way),
        # so their variety is reported, not asserted; every round's consistency was asserted above.
        print(f"hand-over outcomes seen: {dict(outcomes_seen)}")
