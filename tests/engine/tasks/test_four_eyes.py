"""Four-eyes in the engine, for every approval step flows.yaml defines: generated, not a hand list.

For each approval step: user A completes the step it approves, then A may neither claim, be
assigned, be delegated nor complete the approval, whatever the flow stored on the task;
another user may.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from ecomflow.engine.access import manager_roles
from ecomflow.engine.db.models import AuditEvent, HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import ProcessSpec, StepSpec
from ecomflow.engine.errors import FourEyesViolation
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import assign_task, claim_task, complete_task, delegate_task, release_task
from ecomflow.engine.tasks.four_eyes import approved_step_of
from ecomflow.engine.tasks.step_tasks import open_task
from ecomflow.sample_data import sample_object
from tests.factories import attach_as, make_instance, make_user, pin_to_edited_version, step_of


def _approval_steps(*, approving: bool) -> list[tuple[str, str]]:
    return [
        (process.key, step.key)
        for process in get_definitions().processes.values()
        for step in process.steps
        if step.kind == "approval" and (step.approves is not None) == approving
    ]


APPROVING = _approval_steps(approving=True)
NOT_APPROVING = _approval_steps(approving=False)
IDS = [f"{p}.{s}" for p, s in APPROVING]


def _do(action: Any, **kwargs: Any) -> Any:
    """Run one engine action in its own committed transaction."""
    with session_scope() as session:
        return action(session, **kwargs)


def _specs(process: str, step: str) -> tuple[ProcessSpec, StepSpec, StepSpec]:
    spec = get_definitions().process(process)
    approval = spec.step(step)
    return spec, approval, spec.step(approval.approves)


def _roles_of(step: StepSpec) -> tuple[str, ...]:
    return step.roles or (step.role,)


def _new_instance(process: str) -> str:
    return make_instance(process=process, params=None if process == "returns_exchange" else {})


def _open(instance_id: str, step: StepSpec, *, round: int = 1, lane: str = "", excluded: tuple[str, ...] = ()) -> str:
    with session_scope() as session:
        return open_task(
            session, instance_id=instance_id, step=step, round=round, lane=lane, excluded_users=excluded
        ).id


def _sample(step: StepSpec, by: Principal) -> dict[str, Any]:
    return sample_object(dict(step.form.json_schema), attach=attach_as(by.name))


def _complete_approved_work(instance_id: str, approved: StepSpec, author: Principal) -> None:
    """Have the author do the approved step's work (one lane of a parallel step), as in the inbox."""
    lane = approved.roles[0] if approved.roles else ""
    task_id = _open(instance_id, approved, lane=lane)
    _do(claim_task, task_id=task_id, principal=author)
    _do(complete_task, task_id=task_id, principal=author, data=_sample(approved, author))


def _author_and_others(approval: StepSpec, approved: StepSpec) -> tuple[Principal, Principal, Principal]:
    """Return the author A (who may also approve, role-wise), another approver B and a manager."""
    author, _ = make_user(name="author-a", roles=tuple(sorted({*_roles_of(approved), approval.role})))
    other, _ = make_user(name="approver-b", roles=(approval.role,))
    manager, _ = make_user(name="manager-m", roles=tuple(sorted(manager_roles())))
    return author, other, manager


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _event_types(task_id: str) -> list[str]:
    with session_scope() as session:
        return list(
            session.scalars(select(AuditEvent.type).where(AuditEvent.task_id == task_id).order_by(AuditEvent.id))
        )


def _refused(action: Any, *, task_id: str, barred: str, approval: StepSpec, approved: StepSpec, **kwargs: Any) -> None:
    """Assert the action is refused by the four-eyes rule and saves nothing."""
    before = _task(task_id).version, _event_types(task_id)
    with pytest.raises(FourEyesViolation) as refused:
        _do(action, task_id=task_id, **kwargs)
    detail = refused.value.detail
    assert detail.startswith("four-eyes rule:"), detail
    assert barred in detail and approved.key in detail and approval.key in detail, detail
    assert refused.value.about == {"task_id": task_id, "user": barred}
    assert (_task(task_id).version, _event_types(task_id)) == before


def test_flows_yaml_has_approvals_of_earlier_work() -> None:
    assert len(APPROVING) >= 10, APPROVING


@pytest.mark.parametrize(("process", "step"), APPROVING, ids=IDS)
class TestEveryApprovalStep:
    def test_author_of_the_approved_work_is_refused_and_another_user_approves(
        self, clean_db: str, process: str, step: str
    ) -> None:
        _, approval, approved = _specs(process, step)
        author, other, manager = _author_and_others(approval, approved)
        instance_id = _new_instance(process)
        _complete_approved_work(instance_id, approved, author)
        # The flow stores no exclusions here: the engine derives them from flows.yaml.
        task_id = _open(instance_id, approval)
        about = {"barred": author.name, "approval": approval, "approved": approved}

        _refused(claim_task, task_id=task_id, principal=author, **about)
        _refused(assign_task, task_id=task_id, principal=manager, user=author.name, **about)
        _refused(
            complete_task,
            task_id=task_id,
            principal=author,
            data=_sample(approval, author),
            **about,
        )

        claimed = _do(claim_task, task_id=task_id, principal=other)
        assert claimed.assignee == other.name
        _refused(delegate_task, task_id=task_id, principal=other, user=author.name, reason="on leave", **about)
        done = _do(
            complete_task,
            task_id=task_id,
            principal=other,
            data=_sample(approval, other),
        )
        assert (done.state, done.completed_by) == ("completed", other.name)

    def test_a_claim_made_before_the_rule_cannot_complete(self, clean_db: str, process: str, step: str) -> None:
        _, approval, approved = _specs(process, step)
        author, _, manager = _author_and_others(approval, approved)
        instance_id = _new_instance(process)
        _complete_approved_work(instance_id, approved, author)
        task_id = _open(instance_id, approval)
        with session_scope() as session:
            # As a row claimed by an older release, which did not derive the rule, would be.
            session.execute(
                update(HumanTask).where(HumanTask.id == task_id).values(state="claimed", assignee=author.name)
            )
        _refused(
            complete_task,
            task_id=task_id,
            principal=author,
            data=_sample(approval, author),
            barred=author.name,
            approval=approval,
            approved=approved,
        )
        assert _do(release_task, task_id=task_id, principal=manager).state == "open"

    def test_work_of_an_earlier_round_counts(self, clean_db: str, process: str, step: str) -> None:
        _, approval, approved = _specs(process, step)
        author, other, _ = _author_and_others(approval, approved)
        instance_id = _new_instance(process)
        _complete_approved_work(instance_id, approved, author)
        rework_task = _open(instance_id, approval, round=2)
        _refused(
            claim_task, task_id=rework_task, principal=author, barred=author.name, approval=approval, approved=approved
        )
        assert _do(claim_task, task_id=rework_task, principal=other).assignee == other.name


@pytest.mark.parametrize(("process", "step"), NOT_APPROVING, ids=[f"{p}.{s}" for p, s in NOT_APPROVING])
class TestApprovalWithoutEarlierWork:
    def test_only_the_stored_exclusions_apply(self, clean_db: str, process: str, step: str) -> None:
        approval = get_definitions().process(process).step(step)
        excluded, _ = make_user(name="excluded-x", roles=(approval.role,))
        other, _ = make_user(name="approver-b", roles=(approval.role,))
        task_id = _open(_new_instance(process), approval, excluded=(excluded.name,))
        with pytest.raises(FourEyesViolation, match="four-eyes rule: excluded-x"):
            _do(claim_task, task_id=task_id, principal=excluded)
        assert _do(claim_task, task_id=task_id, principal=other).assignee == other.name


class TestDefinitionsChangedUnderTheTask:
    def test_a_task_whose_version_lacks_its_step_approves_nothing(self, clean_db: str) -> None:
        process, step = APPROVING[0]
        _, approval, approved = _specs(process, step)
        instance_id = _new_instance(process)
        task = _task(_open(instance_id, approval))
        with session_scope() as session:
            assert approved_step_of(session, task) == approved.key

        def drop_the_approval(raw: dict[str, Any]) -> None:
            raw["processes"][process]["steps"].remove(step_of(raw, process, step))

        pin_to_edited_version(instance_id, drop_the_approval)
        with session_scope() as session:
            assert approved_step_of(session, task) is None
