"""The task actions against a model written from the rules: hypothesis drives real engine calls by several users.

The model is not engine.task_states.TRANSITIONS; it says, from the rules in DESIGN.md and the engine's contracts:
who sees a task (its role, its assignee, managers), who may hold it (its role or a manager), that an open task is
claimed or assigned, a claimed one released by its holder or a manager, delegated by them to a colleague, completed
only by its holder, that nobody acts on an approval of their own work (four-eyes), that cancelling the instance
cancels its active tasks, and that the sweeper expires active tasks past their expiry time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select, update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.errors import Conflict, EcomflowError, Forbidden, NotFound, ValidationFailed
from ecomflow.engine.events.outbox import RESUME_RUN
from ecomflow.engine.instances.lifecycle import cancel_instance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.sla.sweeper import sweep_once
from ecomflow.engine.tasks.actions import assign_task, claim_task, complete_task, delegate_task, release_task
from ecomflow.engine.tasks.step_tasks import open_task
from tests.factories import make_instance, make_user

ROLES_OF = {
    "wu": ("warehouse",),
    "wang": ("warehouse",),
    "chen": ("customer_service",),
    "ops": ("operations",),
    "boss": ("owner",),
}
USERS = tuple(ROLES_OF)
# Stands for the task's holder (or, while nobody holds it, a user of its role): most random actors are refused.
HOLDER = "<holder>"
ACTORS = st.one_of(st.just(HOLDER), st.sampled_from(USERS))
# Stands for a claimed task (or, while none is, the first): most actions on a random task are refused.
HELD = "<held>"
# Someone who does not exist: handing a task to them is a payload error.
RECEIVERS = (*USERS, "ghost")
REASONS = ("", "cover for a colleague")
OK, UNCHANGED = "ok", "unchanged"
REFUSALS = (NotFound, Forbidden, Conflict, ValidationFailed)


@dataclass
class TaskModel:
    """What a task should be: its rules (role, the step it approves, who is excluded) and its expected state."""

    step: str
    role: str
    worker: str
    good_output: dict[str, str]
    bad_output: dict[str, str]
    approves: str | None = None
    excluded: frozenset[str] = frozenset()
    expires_after: timedelta | None = None
    state: str = "open"
    assignee: str | None = None
    completed_by: str | None = None
    changes: int = 0
    resumes: int = 0

    @property
    def active(self) -> bool:
        return self.state in ("open", "claimed")

    def change(self, *, state: str, assignee: str | None) -> None:
        """Record one successful change: one more version and one more audit event."""
        self.state, self.assignee, self.changes = state, assignee, self.changes + 1


# One returns case: the parcel inspection, the deduction approval that approves it, and the customer service review.
TASK_RULES = {
    "inspect": {
        "role": "warehouse",
        "worker": "wu",
        "good_output": {"condition": "ok", "restock": "yes"},
        "bad_output": {"restock": "maybe"},
        "expires_after": timedelta(hours=24),
    },
    "deduction_approval": {
        "role": "operations",
        "worker": "ops",
        "good_output": {"decision": "approve"},
        "bad_output": {"decision": "reject"},
        "approves": "inspect",
        "excluded": frozenset({"boss"}),
    },
    "cs_review": {
        "role": "customer_service",
        "worker": "chen",
        "good_output": {"decision": "approve"},
        "bad_output": {"decision": "maybe"},
        "expires_after": timedelta(hours=36),
    },
}
STEPS = tuple(TASK_RULES)
TASKS = st.one_of(st.just(HELD), st.sampled_from(STEPS))


# The model knows the managers from PROCESSES.md, not from the engine it checks.
MANAGER_ROLES = frozenset({"owner", "operations"})


def is_manager(user: str) -> bool:
    return bool(set(ROLES_OF.get(user, ())) & MANAGER_ROLES)


def refusal_kind(error: EcomflowError) -> str:
    """Return the family of a refusal, as the API's status shows it."""
    return next(kind.__name__ for kind in REFUSALS if isinstance(error, kind))


@dataclass
class CaseModel:
    """The expected state of the instance and its tasks, and the rules every action is judged by."""

    tasks: dict[str, TaskModel]
    cancelled: bool = False
    hours_passed: timedelta = timedelta(0)

    def sees(self, user: str, task: TaskModel) -> bool:
        return is_manager(user) or task.role in ROLES_OF.get(user, ()) or task.assignee == user

    def may_hold(self, user: str, task: TaskModel) -> bool:
        return task.role in ROLES_OF.get(user, ()) or is_manager(user)

    def did_the_approved_work(self, user: str, task: TaskModel) -> bool:
        """Four-eyes: the user is excluded, or completed the step this task approves."""
        approved = self.tasks.get(task.approves) if task.approves else None
        return user in task.excluded or (approved is not None and approved.completed_by == user)

    def receiver_problem(self, target: str, task: TaskModel, *, reason: str, reason_needed: bool) -> str | None:
        """Return the refusal for handing the task to `target`, or None if they may take it."""
        if (reason_needed and not reason.strip()) or target not in ROLES_OF or not self.may_hold(target, task):
            return "ValidationFailed"
        return "Conflict" if self.did_the_approved_work(target, task) else None

    def claim(self, user: str, task: TaskModel) -> str:
        if not self.sees(user, task):
            return "NotFound"
        if not self.may_hold(user, task):
            return "Forbidden"
        if task.state != "open" or self.did_the_approved_work(user, task):
            return "Conflict"
        task.change(state="claimed", assignee=user)
        return OK

    def release(self, user: str, task: TaskModel) -> str:
        if not self.sees(user, task):
            return "NotFound"
        if task.state == "claimed" and task.assignee != user and not is_manager(user):
            return "Forbidden"
        if task.state != "claimed":
            return "Conflict"
        task.change(state="open", assignee=None)
        return OK

    def assign(self, user: str, task: TaskModel, *, target: str, reason: str) -> str:
        if not self.sees(user, task):
            return "NotFound"
        if not is_manager(user):
            return "Forbidden"
        if not task.active:
            return "Conflict"
        if task.state == "claimed" and task.assignee == target:
            return UNCHANGED
        problem = self.receiver_problem(target, task, reason=reason, reason_needed=task.state == "claimed")
        if problem:
            return problem
        task.change(state="claimed", assignee=target)
        return OK

    def delegate(self, user: str, task: TaskModel, *, target: str, reason: str) -> str:
        if not self.sees(user, task):
            return "NotFound"
        if task.state != "claimed":
            return "Conflict"
        if task.assignee != user and not is_manager(user):
            return "Forbidden"
        if target == task.assignee:
            return "ValidationFailed"
        problem = self.receiver_problem(target, task, reason=reason, reason_needed=True)
        if problem:
            return problem
        task.change(state="claimed", assignee=target)
        return OK

    def complete(self, user: str, task: TaskModel, *, valid: bool) -> str:
        if not self.sees(user, task):
            return "NotFound"
        if self.did_the_approved_work(user, task):
            return "Conflict"
        if task.state == "claimed" and task.assignee != user:
            return "Forbidden"
        if task.state != "claimed":
            return "Conflict"
        if not valid:
            return "ValidationFailed"
        task.change(state="completed", assignee=user)
        task.completed_by, task.resumes = user, task.resumes + 1
        return OK

    def cancel(self, user: str) -> str:
        # Everyone here sees the instance: each user holds the role of one of its tasks, or is a manager.
        if not is_manager(user):
            return "Forbidden"
        if self.cancelled:
            return "Conflict"
        self.cancelled = True
        for task in self.tasks.values():
            if task.active:
                task.change(state="cancelled", assignee=task.assignee)
        return OK

    def sweep(self, hours: int) -> None:
        self.hours_passed += timedelta(hours=hours)
        for task in self.tasks.values():
            if task.active and task.expires_after is not None and task.expires_after <= self.hours_passed:
                task.change(state="expired", assignee=task.assignee)
                task.resumes += 1


def open_case(started: datetime) -> tuple[str, dict[str, str]]:
    """Open the three tasks of one returns case as its flow would; return the instance id and task ids by step."""
    instance_id = make_instance()
    process = get_definitions().process("returns_exchange")
    task_ids = {}
    with session_scope() as session:
        for step, rules in TASK_RULES.items():
            task = open_task(
                session,
                instance_id=instance_id,
                step=process.step(step),
                excluded_users=sorted(rules.get("excluded", ())),
                now=started,
            )
            task_ids[step] = task.id
            expires = rules.get("expires_after")
            # Outside the model: reminders and escalation (which widens who may claim); the sweep here only expires.
            session.execute(
                update(HumanTask)
                .where(HumanTask.id == task.id)
                .values(
                    due_at=None,
                    remind_at=None,
                    escalate_at=None,
                    expires_at=started + expires if expires else None,
                )
            )
    return instance_id, task_ids


@dataclass(frozen=True)
class TaskRow:
    """A task as the database shows it, with its audit events after creation and its queued resumes."""

    state: str
    assignee: str | None
    version: int
    completed_by: str | None
    events: int
    resumes: int


def read_case(instance_id: str, task_ids: dict[str, str]) -> tuple[str, dict[str, TaskRow]]:
    """Read the instance's state and each task as a TaskRow, in one transaction."""
    events = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.task_id == HumanTask.id, AuditEvent.type != "task.created")
        .scalar_subquery()
    )
    resumes = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_id == HumanTask.id, OutboxMessage.kind == RESUME_RUN)
        .scalar_subquery()
    )
    step_of = {task_id: step for step, task_id in task_ids.items()}
    with session_scope() as session:
        rows = session.execute(
            select(
                HumanTask.id,
                HumanTask.state,
                HumanTask.assignee,
                HumanTask.version,
                HumanTask.completed_by,
                events,
                resumes,
            ).where(HumanTask.id.in_(step_of))
        )
        tasks = {step_of[task_id]: TaskRow(*values) for task_id, *values in rows}
        return session.scalar(select(ProcessInstance.state).where(ProcessInstance.id == instance_id)), tasks


def forget_cases() -> None:
    """Delete every case's rows, keeping the users: each example starts from an empty case."""
    with session_scope() as session:
        for model in (OutboxMessage, AuditEvent, HumanTask, ProcessInstance):
            session.execute(delete(model))


class TaskLifecycle(RuleBasedStateMachine):
    """Several users act on one returns case's tasks; after every step the database must equal the model."""

    def __init__(self, principals: dict[str, Principal]) -> None:
        super().__init__()
        self.principals = principals

    @initialize()
    def open_a_fresh_case(self) -> None:
        forget_cases()
        self.started = utcnow()
        self.instance_id, self.task_ids = open_case(self.started)
        self.model = CaseModel({step: TaskModel(step=step, **rules) for step, rules in TASK_RULES.items()})
        self.steps_taken = 0

    def task_step(self, step: str) -> str:
        """Return the step acted on: the one drawn, or for HELD a claimed task's (the first step if none is)."""
        held = [key for key, task in self.model.tasks.items() if task.state == "claimed"]
        return (held[0] if held else STEPS[0]) if step == HELD else step

    def actor(self, user: str, step: str) -> str:
        """Return the user acting: the one drawn, or for HOLDER the task's holder or a user of its role."""
        task = self.model.tasks[step]
        return (task.assignee or task.worker) if user == HOLDER else user

    def act(self, action: Any, **kwargs: Any) -> str:
        """Run one engine call in its own transaction; return "ok" or the family of its refusal."""
        try:
            with session_scope() as session:
                action(session, **kwargs)
        except EcomflowError as refusal:
            return refusal_kind(refusal)
        return OK

    def judge(self, got: str, expected: str, what: str) -> None:
        self.steps_taken += 1
        assert got == (OK if expected == UNCHANGED else expected), (
            f"{what}: the engine said {got}, the rules {expected}"
        )

    @rule(user=ACTORS, step=TASKS)
    def claim(self, user: str, step: str) -> None:
        step = self.task_step(step)
        user = self.actor(user, step)
        got = self.act(claim_task, task_id=self.task_ids[step], principal=self.principals[user])
        self.judge(got, self.model.claim(user, self.model.tasks[step]), f"{user} claims {step}")

    @rule(user=ACTORS, step=TASKS)
    def release(self, user: str, step: str) -> None:
        step = self.task_step(step)
        user = self.actor(user, step)
        got = self.act(release_task, task_id=self.task_ids[step], principal=self.principals[user])
        self.judge(got, self.model.release(user, self.model.tasks[step]), f"{user} releases {step}")

    @rule(user=ACTORS, step=TASKS, to=st.sampled_from(RECEIVERS), reason=st.sampled_from(REASONS))
    def assign(self, user: str, step: str, to: str, reason: str) -> None:
        step = self.task_step(step)
        user = self.actor(user, step)
        got = self.act(
            assign_task, task_id=self.task_ids[step], principal=self.principals[user], user=to, reason=reason
        )
        expected = self.model.assign(user, self.model.tasks[step], target=to, reason=reason)
        self.judge(got, expected, f"{user} assigns {step} to {to} (reason {reason!r})")

    @rule(user=ACTORS, step=TASKS, to=st.sampled_from(RECEIVERS), reason=st.sampled_from(REASONS))
    def delegate(self, user: str, step: str, to: str, reason: str) -> None:
        step = self.task_step(step)
        user = self.actor(user, step)
        got = self.act(
            delegate_task, task_id=self.task_ids[step], principal=self.principals[user], user=to, reason=reason
        )
        expected = self.model.delegate(user, self.model.tasks[step], target=to, reason=reason)
        self.judge(got, expected, f"{user} delegates {step} to {to} (reason {reason!r})")

    @rule(user=ACTORS, step=TASKS, valid=st.booleans())
    def complete(self, user: str, step: str, valid: bool) -> None:
        step = self.task_step(step)
        user, task = self.actor(user, step), self.model.tasks[step]
        got = self.act(
            complete_task,
            task_id=self.task_ids[step],
            principal=self.principals[user],
            data=task.good_output if valid else task.bad_output,
        )
        self.judge(
            got,
            self.model.complete(user, task, valid=valid),
            f"{user} completes {step} ({'good' if valid else 'bad'} data)",
        )

    # Cancelling ends every task: let the case live a while first, or most runs would test cancelled tasks only.
    @precondition(lambda self: self.steps_taken >= 20)
    @rule(user=st.sampled_from(USERS))
    def cancel_the_instance(self, user: str) -> None:
        got = self.act(cancel_instance, instance_id=self.instance_id, principal=self.principals[user], reason="test")
        self.judge(got, self.model.cancel(user), f"{user} cancels the instance")

    @rule(hours=st.sampled_from([1, 3]))
    def sweep_later(self, hours: int) -> None:
        self.model.sweep(hours)
        sweep_once(now=self.started + self.model.hours_passed, forecast=False)

    @invariant()
    def database_equals_model(self) -> None:
        expected = {
            step: TaskRow(task.state, task.assignee, 1 + task.changes, task.completed_by, task.changes, task.resumes)
            for step, task in self.model.tasks.items()
        }
        assert read_case(self.instance_id, self.task_ids) == (
            "cancelled" if self.model.cancelled else "waiting",
            expected,
        )


class TestTaskActionsAgainstTheRules:
    def test_any_sequence_of_actions_leaves_what_the_rules_say(self, clean_db: str) -> None:
        # Nobody's roles change during a run: the users are made once, the cases afresh for every example.
        principals = {name: make_user(name=name, roles=roles)[0] for name, roles in ROLES_OF.items()}
        run_state_machine_as_test(
            lambda: TaskLifecycle(principals),
            # The same sequences every run: a fixed run time, a failure anyone can reproduce;
            # raise max_examples to explore.
            settings=settings(
                max_examples=40,
                stateful_step_count=40,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
