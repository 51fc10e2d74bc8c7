"""Child instances: started once per (parent, step, index), linked to the parent."""

from __future__ import annotations

from sqlalchemy import func, select

from ecomflow.engine.db.models import OutboxMessage, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.children import MAX_BUSINESS_KEY, start_child_once
from ecomflow.engine.instances.lifecycle import get_instance, start_instance
from tests.factories import return_params, starter


def _parent(business_key: str) -> str:
    with session_scope() as session:
        return start_instance(
            session,
            definitions=get_definitions(),
            process_key="returns_exchange",
            business_key=business_key,
            params=return_params(),
            principal=starter(),
        ).id


def _start(parent_id: str, index: int = 0) -> str:
    with session_scope() as session:
        return start_child_once(
            session,
            definitions=get_definitions(),
            parent_id=parent_id,
            step_key="follow_up_case",
            index=index,
            process_key="returns_exchange",
            params=return_params(),
        )


class TestStartChildOnce:
    def test_a_second_call_returns_the_same_child(self, clean_db: str) -> None:
        parent = _parent("ORD-PARENT-1")
        first, again = _start(parent), _start(parent)
        assert first == again
        with session_scope() as session:
            children = session.scalars(select(ProcessInstance).where(ProcessInstance.parent_id == parent)).all()
            starts = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.instance_id == first)
            )
        assert [c.id for c in children] == [first]
        assert (children[0].business_key, children[0].parent_step) == (
            "ORD-PARENT-1/follow_up_case/1",
            "follow_up_case",
        )
        assert starts == 1

    def test_each_index_gets_its_own_child(self, clean_db: str) -> None:
        parent = _parent("ORD-PARENT-2")
        assert len({_start(parent, 0), _start(parent, 1), _start(parent, 0)}) == 2

    def test_a_nested_key_too_long_falls_back_to_the_parent_id(self, clean_db: str) -> None:
        parent = _parent("K" * 120)
        child = _start(parent)
        with session_scope() as session:
            key = get_instance(session, child).business_key
        assert len(key) <= MAX_BUSINESS_KEY and key == f"follow_up_case/1/{parent}"
