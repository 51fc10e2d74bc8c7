"""The building blocks a process flow is written with: human steps, approvals, auto steps.

A human step survives days, restarts and deploys: the task row is made once per
(instance, step, round); a completed task's output comes from our database; otherwise the run
suspends (its process is free) until the dispatcher resumes it, and replays from the top.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import Task
from prefect.context import FlowRunContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import REWORK_CEILING, Definitions, StepSpec
from ecomflow.engine.definitions.versions import definitions_of_instance, list_versions
from ecomflow.engine.errors import UnrunnableVersion
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.auto_step_results import load_result, result_key, store_result
from ecomflow.engine.instances.children import start_child_once
from ecomflow.engine.instances.lifecycle import (
    ACTIVE_INSTANCE_STATES,
    InstanceState,
    find_instance_of_run,
    get_instance,
    record_flow_run,
    set_instance_state,
    start_instance,
)
from ecomflow.engine.instances.timers import arm_timer, find_timer, note_early_resume, timer_pause_key
from ecomflow.engine.orchestrator.runs import link_run_to_instance_page, suspend_current_run
from ecomflow.engine.people.principals import SYSTEM, SYSTEM_ACTOR
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState
from ecomflow.engine.tasks.step_tasks import find_task, note_resume_without_completion, open_task, pause_key

logger = logging.getLogger("ecomflow.flows")


class InstanceEnded(Exception):
    """The instance was cancelled or ended while its run was away; the run stops."""


class ReworkStopped(Exception):
    """The managers stopped an instance whose step reached its rework ceiling; the run finishes it."""

    def __init__(self, step_key: str, rounds: int, decision: StepOutcome) -> None:
        super().__init__(f"{step_key}: stopped by {decision.by} after {rounds} rounds")
        self.step_key, self.rounds, self.decision = step_key, rounds, decision


@dataclass(frozen=True)
class StepOutcome:
    """What a human step produced: its form data and who submitted it, or that it expired."""

    data: dict[str, Any] = field(default_factory=dict)
    by: str | None = None
    at: datetime | None = None
    expired: bool = False

    @property
    def approved(self) -> bool:
        """Return whether an approval step's decision was approve."""
        return self.data.get("decision") == "approve"

    @property
    def comment(self) -> str:
        """Return the reviewer's comment, if any."""
        return self.data.get("comment") or ""


def _outcome(task: HumanTask) -> StepOutcome | None:
    if task.state == TaskState.COMPLETED:
        return StepOutcome(data=dict(task.output or {}), by=task.completed_by, at=task.completed_at)
    if task.state == TaskState.EXPIRED:
        return StepOutcome(expired=True, at=task.completed_at)
    if task.state == TaskState.CANCELLED:
        raise InstanceEnded(f"task {task.id} was cancelled")
    return None


class ProcessRun:
    """One execution (or replay) of a process instance inside its flow run, on its pinned definition version."""

    def __init__(
        self,
        *,
        definitions: Definitions,
        process_key: str,
        instance_id: str,
        business_key: str,
        params: dict[str, Any],
        started_at: datetime,
    ) -> None:
        self.definitions = definitions
        self.spec = definitions.process(process_key)
        self.instance_id = instance_id
        self.business_key = business_key
        self.params = params
        self.started_at = started_at

    def rule(self, name: str, default: Any = None) -> Any:
        """Return a shared rule's parameters (banned terms, price policy …) of the instance's version, as plain data."""
        return _thawed(self.definitions.rules.get(name, default))

    @classmethod
    def load(cls, process_key: str, instance_id: str, *, written_for: frozenset[int]) -> ProcessRun:
        """Load the instance the run executes; raise InstanceEnded if it ended, UnrunnableVersion if unrunnable here."""
        with session_scope() as session:
            instance = get_instance(session, instance_id)
            if instance.state not in ACTIVE_INSTANCE_STATES:
                raise InstanceEnded(f"instance {instance_id} is {instance.state}")
            _check_written_for(session, process_key, instance.definition_version, written_for, instance_id)
            set_instance_state(session, instance=instance, state=InstanceState.RUNNING)
            return cls(
                definitions=definitions_of_instance(session, instance),
                process_key=process_key,
                instance_id=instance_id,
                business_key=instance.business_key,
                params=dict(instance.params),
                started_at=instance.created_at,
            )

    @classmethod
    def load_or_start(
        cls, process_key: str, *, business_key: str, params: dict[str, Any], written_for: frozenset[int]
    ) -> ProcessRun:
        """Load the instance bound to this scheduled run, starting it on the run's first execution."""
        flow_run_id = str(FlowRunContext.get().flow_run.id)
        started = False
        with session_scope() as session:
            existing = find_instance_of_run(session, flow_run_id=flow_run_id)
            if existing is None:
                started = True
                existing = start_instance(
                    session,
                    definitions=get_definitions(),
                    process_key=process_key,
                    business_key=business_key,
                    params=params,
                    principal=SYSTEM,
                    start_run=False,
                )
                record_flow_run(session, instance_id=existing.id, flow_run_id=flow_run_id)
            instance_id, run_name = existing.id, f"{process_key}/{existing.business_key}"
        if started:
            _link_to_instance_page(flow_run_id, instance_id, run_name)
        return cls.load(process_key, instance_id, written_for=written_for)

    def human(self, step_key: str, *, round: int = 1, context: dict[str, Any] | None = None) -> StepOutcome:
        """Wait for a person to complete the step's task and return what they submitted."""
        return self._wait_for_task(self.spec.step(step_key), round=round, context=context)

    def approval(self, step_key: str, *, round: int = 1, context: dict[str, Any] | None = None) -> StepOutcome:
        """Wait for an approve/reject decision; the engine keeps the author of the approved work off it (four-eyes)."""
        return self._wait_for_task(self.spec.step(step_key), round=round, context=context)

    def next_round(self, step_key: str, round: int, *, context: dict[str, Any] | None = None) -> int:
        """Return the round after `round` to rework step_key in; at its rework ceiling the managers decide first.

        Every `max_rounds` rounds (flows.yaml, default 5) a rework-ceiling task goes to the managers, audited:
        more_rounds allows another max_rounds rounds; stop raises ReworkStopped, which finishes the instance.
        """
        step = self.spec.step(step_key)
        if round % step.max_rounds != 0:
            return round + 1
        ceiling = self.spec.step(REWORK_CEILING)
        facts = {"step": step_key, "rounds": round, "max_rounds": step.max_rounds}
        context = {"rework_ceiling": facts, **(context or {})}
        with session_scope() as session:
            # The escalation is audited once, in the transaction that opens the managers' task.
            if not find_task(
                session, instance_id=self.instance_id, step_key=REWORK_CEILING, round=round, lane=step_key
            ):
                record_event(
                    session,
                    type="instance.rework_ceiling",
                    actor=SYSTEM_ACTOR,
                    instance_id=self.instance_id,
                    data=facts,
                )
                open_task(
                    session, instance_id=self.instance_id, step=ceiling, round=round, lane=step_key, context=context
                )
        decision = self._wait_for_task(ceiling, round=round, context=context, lane=step_key)
        if decision.data.get("decision") == "more_rounds":
            return round + 1
        raise ReworkStopped(step_key, round, decision)

    def parallel(
        self, step_key: str, *, round: int = 1, context: dict[str, Any] | None = None
    ) -> dict[str, StepOutcome]:
        """Open one task per role of the step at once and wait until every one is done."""
        step = self.spec.step(step_key)
        with session_scope() as session:
            for role in step.roles:
                open_task(session, instance_id=self.instance_id, step=step, round=round, lane=role, context=context)
        return {role: self._wait_for_task(step, round=round, context=context, lane=role) for role in step.roles}

    def wait_until(self, step_key: str, fire_at: datetime, *, round: int = 1) -> None:
        """Wait (suspended, no process held) until the time; the sweeper resumes the run."""
        with session_scope() as session:
            timer = arm_timer(
                session, instance_id=self.instance_id, step_key=step_key, round=round, fire_at=fire_at, now=utcnow()
            )
            fired, key, timer_id = timer.fired_at is not None, timer_pause_key(timer), timer.id
            if not fired:
                # In the timer's transaction: whoever sees the timer armed sees the instance waiting.
                instance = get_instance(session, self.instance_id)
                set_instance_state(session, instance=instance, state=InstanceState.WAITING)
        while not fired:
            suspend_current_run(key)  # raises Pause; returns only if this key was resumed before
            with session_scope() as session:
                timer = find_timer(session, instance_id=self.instance_id, step_key=step_key, round=round)
                fired = timer.fired_at is not None
                if not fired:
                    key = timer_pause_key(note_early_resume(session, timer_id=timer_id))

    def child(
        self, step_key: str, *, index: int, process_key: str, params: dict[str, Any], business_key: str | None = None
    ) -> str:
        """Start a child instance for this step and index exactly once; return its id."""
        arguments = {
            "definitions": get_definitions(),
            "parent_id": self.instance_id,
            "step_key": step_key,
            "index": index,
            "process_key": process_key,
            "params": params,
            "business_key": business_key,
        }
        try:
            with session_scope() as session:
                return start_child_once(session, **arguments)
        except IntegrityError:
            # A concurrent replay started it first; this attempt rolled back entirely.
            with session_scope() as session:
                return start_child_once(session, **arguments)

    def auto(self, step_key: str, step_task: Task, *args: Any, round: int = 1, **kwargs: Any) -> dict[str, Any]:
        """Run an auto step once; a replay gets the stored result, so the path never changes."""
        key = result_key(self.instance_id, step_key, round)
        with session_scope() as session:
            stored = load_result(session, key=key)
        if stored is not None:
            return stored
        result = step_task.with_options(name=step_key)(*args, **kwargs)
        with session_scope() as session:
            return store_result(session, key=key, instance_id=self.instance_id, step_key=step_key, result=result)

    def finish(self, outcome: str, **details: Any) -> dict[str, Any]:
        """Mark the instance completed with its outcome and return the run's result."""
        result = {"outcome": outcome, **details}
        with session_scope() as session:
            instance = get_instance(session, self.instance_id)
            instance.result = result
            session.flush()
            set_instance_state(session, instance=instance, state=InstanceState.COMPLETED, outcome=outcome)
        return result

    def _wait_for_task(
        self,
        step: StepSpec,
        *,
        round: int,
        context: dict[str, Any] | None,
        lane: str = "",
    ) -> StepOutcome:
        with session_scope() as session:
            task = open_task(
                session,
                instance_id=self.instance_id,
                step=step,
                round=round,
                lane=lane,
                context=context,
            )
            outcome = _outcome(task)
            key = pause_key(task)
        while outcome is None:
            suspend_current_run(key)  # raises Pause; returns only if this key was resumed before
            with session_scope() as session:
                task = find_task(session, instance_id=self.instance_id, step_key=step.key, round=round, lane=lane)
                outcome = _outcome(task)
                if outcome is None and task.state in ACTIVE_STATES:
                    key = pause_key(note_resume_without_completion(session, task_id=task.id))
        return outcome


def _thawed(value: Any) -> Any:
    """Return frozen rule parameters as the dicts and lists a Prefect task takes."""
    if isinstance(value, Mapping):
        return {key: _thawed(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thawed(item) for item in value]
    return value


def _check_written_for(
    session: Session, process_key: str, version: int, written_for: frozenset[int], instance_id: str
) -> None:
    """Refuse to run an instance whose definition version the flow code was not written for."""
    stored = {v.version: v for v in list_versions(session, process_key)}
    declared = stored[version].declared_version if version in stored else None
    if declared in written_for:
        return
    held = f"flows.yaml version: {declared}" if declared is not None else "a version this database does not hold"
    raise UnrunnableVersion(
        f"instance {instance_id} runs on {process_key} definition version {version} ({held}); the loaded flow "
        f"ecomflow.flows.{process_key} was written for flows.yaml version: {', '.join(map(str, sorted(written_for)))}. "
        f"Deploy flow code written for it, or move the instance: ecomflow instances migrate --process {process_key} "
        f"--to-version N",
        instance_id=instance_id,
        version=version,
    )


def _link_to_instance_page(flow_run_id: str, instance_id: str, run_name: str) -> None:
    """Give a scheduled run the link artifact to its instance page; a failure costs the link, never the run."""
    try:
        link_run_to_instance_page(flow_run_id=flow_run_id, instance_id=instance_id, title=run_name)
    except Exception:  # the link is a convenience: the run goes on without it
        logger.warning("could not attach the instance-page link to flow run %s", flow_run_id, exc_info=True)
