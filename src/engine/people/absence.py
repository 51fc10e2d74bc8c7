"""Absence: a user marked away hands their claimed tasks to a substitute, or back to the queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, User
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Forbidden, NotFound, ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import available_principal, find_user
from ecomflow.engine.tasks.actions import delegate_task, release_task
from ecomflow.engine.tasks.four_eyes import four_eyes_violation
from ecomflow.engine.tasks.states import TaskState

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Handover:
    """What became of one task its holder left: delegated to the substitute, or released to the queue."""

    task_id: str
    process: str
    step: str
    outcome: str
    to: str | None
    reason: str


def get_user_for(session: Session, *, name: str, principal: Principal) -> User:
    """Return the user, if the caller is that user or a manager."""
    if not access.may_manage_user(principal, name):
        raise Forbidden(f"only {name} themself or a manager may see or change {name}'s absence", user=name)
    user = find_user(session, name)
    if user is None:
        raise NotFound(f"user {name} does not exist", user=name)
    return user


def mark_away(
    session: Session,
    *,
    name: str,
    principal: Principal,
    reason: str,
    until: datetime | None = None,
    substitute: str | None = None,
) -> tuple[User, list[Handover]]:
    """Mark the user away and hand each task they hold to the substitute or back to the queue."""
    user = get_user_for(session, name=name, principal=principal)
    now = utcnow()
    stand_in = _check_absence(session, name=name, reason=reason, until=until, substitute=substitute, now=now)
    user.away_since, user.away_until, user.substitute = now, until, substitute
    record_event(
        session,
        type="user.away",
        actor=principal.name,
        data={"user": name, "until": until.isoformat() if until else None, "substitute": substitute, "reason": reason},
    )
    # Locked so that no completion or release slips in between reading and handing over.
    held = list(
        session.scalars(
            select(HumanTask)
            .where(HumanTask.assignee == name, HumanTask.state == TaskState.CLAIMED)
            .order_by(HumanTask.claimed_at, HumanTask.id)
            .with_for_update()
        )
    )
    handovers = [_hand_over(session, task, principal=principal, stand_in=stand_in, reason=reason) for task in held]
    session.flush()
    return user, handovers


def mark_back(session: Session, *, name: str, principal: Principal) -> User:
    """End the user's absence; a user who was not marked away stays as they are."""
    user = get_user_for(session, name=name, principal=principal)
    if user.away_since is None:
        return user
    user.away_since, user.away_until, user.substitute = None, None, None
    record_event(session, type="user.back", actor=principal.name, data={"user": name})
    session.flush()
    return user


def _check_absence(
    session: Session, *, name: str, reason: str, until: datetime | None, substitute: str | None, now: datetime
) -> Principal | None:
    """Refuse a bad absence, naming every field at fault; return the substitute as a principal."""
    problems: list[FieldProblem] = []
    if not reason.strip() or len(reason) > MAX_REASON_CHARS:
        rule = "must not be empty" if not reason.strip() else f"must be at most {MAX_REASON_CHARS} characters"
        problems.append(FieldProblem("reason", "length", f"reason {rule}"))
    if until is not None and until.tzinfo is None:
        problems.append(FieldProblem("until", "timezone", "until must carry a time zone offset"))
    elif until is not None and until <= now:
        problems.append(FieldProblem("until", "future", f"until must lie in the future (now is {now.isoformat()})"))
    stand_in = None
    if substitute == name:
        problems.append(FieldProblem("substitute", "other", f"substitute must be someone other than {name}"))
    elif substitute is not None:
        try:
            stand_in = available_principal(session, substitute, field="substitute", now=now)
        except ValidationFailed as unavailable:
            problems.extend(unavailable.problems)
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=problems)
    return stand_in


def _hand_over(
    session: Session, task: HumanTask, *, principal: Principal, stand_in: Principal | None, reason: str
) -> Handover:
    obstacle = _obstacle(session, task, stand_in=stand_in)
    about = {"task_id": task.id, "process": task.process_key, "step": task.step_key}
    if obstacle is None:
        why = f"absence: {reason}"
        delegate_task(session, task_id=task.id, principal=principal, user=stand_in.name, reason=why)
        return Handover(**about, outcome="delegated", to=stand_in.name, reason=why)
    why = f"absence: {reason}; {obstacle}"
    release_task(session, task_id=task.id, principal=principal, reason=why)
    return Handover(**about, outcome="released", to=None, reason=why)


def _obstacle(session: Session, task: HumanTask, *, stand_in: Principal | None) -> str | None:
    """Return why the substitute cannot take the task, or None if they can."""
    if stand_in is None:
        return "no substitute named"
    if not access.may_hold_task(stand_in, task):
        return f"substitute {stand_in.name} lacks role {task.role}"
    return four_eyes_violation(session, task=task, user=stand_in.name)
