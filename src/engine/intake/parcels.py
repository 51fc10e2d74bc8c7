"""The buyer's return parcel (退货物流单号) a platform reports on a refund request, filled into its returns case."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.platform_models import PlatformRefund
from ecomflow.engine.definitions.forms import FieldProblem, FormSpec, validate_form
from ecomflow.engine.definitions.versions import step_of_task
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.tasks.moves import try_move_task
from ecomflow.engine.tasks.states import TaskAction, TaskState
from ecomflow.engine.tasks.step_tasks import task_pause_prefix

AWAIT_PARCEL = "await_parcel"
# A person logging a parcel records its cost; the platform's refund feed carries none, so it stays unknown.
SHIPPING_COST = "return_shipping_cost"


def parcel_of(refund: PlatformRefund) -> dict[str, Any] | None:
    """Return the await_parcel form data the refund carries (tracking number, carrier), or None before it ships."""
    if not refund.return_tracking_no:
        return None
    parcel: dict[str, Any] = {"return_tracking_no": refund.return_tracking_no}
    if refund.return_carrier:
        parcel["carrier"] = refund.return_carrier
    return parcel


def _problems_besides_the_cost(form: FormSpec, parcel: dict[str, Any]) -> list[FieldProblem]:
    """Return the form's problems with the parcel, but the missing shipping cost: the platform never reports it."""
    return [
        problem
        for problem in validate_form(form, parcel)
        if (problem.field, problem.rule) != (SHIPPING_COST, "required")
    ]


def reported_parcel(session: Session, *, instance_id: str) -> dict[str, Any] | None:
    """Return the parcel the platform reported for the case's refund request, or None if none yet."""
    refund = session.scalar(select(PlatformRefund).where(PlatformRefund.instance_id == instance_id))
    return None if refund is None else parcel_of(refund)


def fill_parcel(session: Session, refund: PlatformRefund, *, actor: str) -> HumanTask | None:
    """Complete the case's waiting await_parcel task with the reported parcel and resume its run; None if none waits.

    No task waits while the case is still in review: the flow reads the parcel from the refund when it gets there.
    A task a colleague claimed is completed all the same: the platform's tracking number is the one that counts.
    """
    parcel = parcel_of(refund)
    if parcel is None or refund.instance_id is None:
        return None
    query = select(HumanTask).where(
        HumanTask.instance_id == refund.instance_id,
        HumanTask.step_key == AWAIT_PARCEL,
        HumanTask.state.in_((TaskState.OPEN, TaskState.CLAIMED)),
    )
    task = session.scalar(query.order_by(HumanTask.round.desc()).limit(1))
    if task is None:
        return None
    form = step_of_task(session, task).form
    if form is not None and _problems_besides_the_cost(form, parcel):
        return None  # a form that asks more than the platform reports: a person completes it
    if task.state == TaskState.OPEN and try_move_task(session, task, TaskAction.CLAIM, actor=actor) is None:
        return None
    if try_move_task(session, task, TaskAction.COMPLETE, actor=actor, output=parcel) is None:
        return None
    record_event(
        session,
        type="refund.parcel_filled",
        actor=actor,
        instance_id=task.instance_id,
        task_id=task.id,
        data={"platform": refund.platform, "refund_no": refund.refund_no, **parcel},
    )
    outbox.enqueue_resume(
        session, instance_id=task.instance_id, pause_key_prefix=task_pause_prefix(task.id), task_id=task.id
    )
    return task
