"""Instance state changes: compare-and-set, and cancel leaving completed work alone."""

from __future__ import annotations

from sqlalchemy import select

from ecomflow.engine.db.models import HumanTask, OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events.audit import list_events
from ecomflow.engine.instances.lifecycle import InstanceState, cancel_instance, get_instance, set_instance_state
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import claim_task, complete_task
from tests.factories import make_instance, make_task

MANAGER = Principal(name="mgr", roles=frozenset({"operations"}))
INSPECTOR = Principal(name="wh", roles=frozenset({"warehouse"}))


class TestSetInstanceState:
    def test_a_stale_instance_does_not_overwrite_a_newer_state(self, clean_db: str) -> None:
        instance_id = make_instance()
        with session_scope() as session:
            stale = get_instance(session, instance_id)
            session.expunge(stale)
        with session_scope() as other:
            assert set_instance_state(other, instance=get_instance(other, instance_id), state=InstanceState.COMPLETED)
        with session_scope() as session:
            # The copy read before the completion still says "running".
            attached = session.merge(stale, load=False)
            assert attached.state == InstanceState.RUNNING
            assert set_instance_state(session, instance=attached, state=InstanceState.CANCELLED) is False
            assert attached.state == InstanceState.COMPLETED
        with session_scope() as session:
            types = [e.type for e in list_events(session, instance_id=instance_id)]
        assert "instance.completed" in types and "instance.cancelled" not in types

    def test_ending_frees_the_business_key(self, clean_db: str) -> None:
        instance_id = make_instance()
        with session_scope() as session:
            instance = get_instance(session, instance_id)
            set_instance_state(session, instance=instance, state=InstanceState.COMPLETED)
            assert instance.active_key is None and instance.ended_at is not None


class TestCancelInstance:
    def test_open_tasks_are_cancelled_and_completed_ones_stay_completed(self, clean_db: str) -> None:
        instance_id = make_instance()
        done = make_task(step="inspect", instance_id=instance_id)
        waiting = make_task(step="reship", instance_id=instance_id)
        with session_scope() as session:
            claim_task(session, task_id=done, principal=INSPECTOR)
        with session_scope() as session:
            complete_task(
                session,
                task_id=done,
                principal=INSPECTOR,
                data={"condition": "ok", "restock": "yes"},
            )
        with session_scope() as session:
            cancel_instance(session, instance_id=instance_id, principal=MANAGER, reason="customer withdrew")
        with session_scope() as session:
            states = dict(
                session.execute(select(HumanTask.id, HumanTask.state).where(HumanTask.instance_id == instance_id)).all()
            )
            cancels = session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.instance_id == instance_id, OutboxMessage.kind == "cancel_run"
                )
            ).all()
            assert get_instance(session, instance_id).state == InstanceState.CANCELLED
        assert states == {done: "completed", waiting: "cancelled"}
        assert len(cancels) == 1
