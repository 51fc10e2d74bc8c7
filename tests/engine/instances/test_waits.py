"""What our database says an instance's run can be suspended on: the message's own wait, or something else too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.instances.timers import arm_timer
from ecomflow.engine.instances.waits import has_other_wait
from ecomflow.engine.tasks.states import TaskState
from tests.factories import make_instance, make_task

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def _set_state(task_id: str, state: TaskState) -> None:
    with session_scope() as session:
        session.execute(update(HumanTask).where(HumanTask.id == task_id).values(state=state))


def _other_wait(instance_id: str, task_id: str | None) -> bool:
    with session_scope() as session:
        return has_other_wait(session, instance_id=instance_id, task_id=task_id)


class TestHasOtherWait:
    def test_a_completed_task_with_nothing_else_open_is_the_sole_wait(self, clean_db: str) -> None:
        instance_id = make_instance()
        task_id = make_task(instance_id=instance_id, step="inspect")
        _set_state(task_id, TaskState.COMPLETED)
        assert _other_wait(instance_id, task_id) is False

    def test_the_task_of_the_message_still_open_is_no_other_wait(self, clean_db: str) -> None:
        instance_id = make_instance()
        task_id = make_task(instance_id=instance_id, step="inspect")
        assert _other_wait(instance_id, task_id) is False

    def test_another_active_lane_is_another_wait(self, clean_db: str) -> None:
        instance_id = make_instance()
        done = make_task(instance_id=instance_id, step="inspect")
        claimed = make_task(instance_id=instance_id, step="cs_review")
        _set_state(done, TaskState.COMPLETED)
        _set_state(claimed, TaskState.CLAIMED)
        assert _other_wait(instance_id, done) is True
        _set_state(claimed, TaskState.EXPIRED)
        assert _other_wait(instance_id, done) is False

    def test_an_unfired_timer_is_another_wait_and_a_fired_one_is_not(self, clean_db: str) -> None:
        instance_id = make_instance()
        with session_scope() as session:
            arm_timer(
                session, instance_id=instance_id, step_key="past", round=1, fire_at=T0 - timedelta(hours=1), now=T0
            )
        assert _other_wait(instance_id, None) is False
        with session_scope() as session:
            arm_timer(
                session, instance_id=instance_id, step_key="later", round=1, fire_at=T0 + timedelta(hours=1), now=T0
            )
        assert _other_wait(instance_id, None) is True

    def test_other_instances_do_not_count(self, clean_db: str) -> None:
        instance_id, neighbour = make_instance(), make_instance()
        make_task(instance_id=neighbour, step="inspect")
        with session_scope() as session:
            arm_timer(
                session, instance_id=neighbour, step_key="later", round=1, fire_at=T0 + timedelta(hours=1), now=T0
            )
        assert _other_wait(instance_id, None) is False
