"""The one door for a task's state: only tasks/moves.py writes it, and every move writes one event shape."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import VersionMismatch
from ecomflow.engine.instances.lifecycle import cancel_instance
from ecomflow.engine.tasks.actions import assign_task, claim_task, complete_task, delegate_task, release_task
from ecomflow.engine.tasks.moves import HOLDING_EVENT_TYPES, move_task, try_move_task
from ecomflow.engine.tasks.states import TaskAction
from ecomflow.engine.tasks.step_tasks import expire_due_tasks
from tests.factories import make_task, make_user

SOURCE = Path(__file__).resolve().parents[3] / "src"
THE_DOOR = SOURCE / "engine" / "tasks" / "moves.py"
MOVE_SHAPE = {"from", "to", "action", "actor", "reason", "at", "assignee", "previous_assignee"}
GOOD_INSPECTION = {"condition": "ok", "restock": "yes"}


def _writes_task_state(tree: ast.AST, text: str) -> list[int]:
    """Return the lines that write human_tasks.state: an UPDATE of the tasks setting state, or task.state = ..."""
    # Names bound to the tasks' table (table = HumanTask.__table__) count as the table itself.
    tables = {"HumanTask", "human_tasks"} | {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and "HumanTask" in ast.unparse(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "values":
            sets_state = any(
                k.arg == "state" or (k.arg is None and "state" in ast.unparse(k.value)) for k in node.keywords
            )
            chain = ast.get_source_segment(text, node) or ""
            if sets_state and any(f"update({name}" in chain for name in tables):
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(
                isinstance(t, ast.Attribute) and t.attr == "state" and "task" in ast.unparse(t.value) for t in targets
            ):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "update human_tasks" in node.value.lower()
            and "state" in node.value.lower()
        ):
            lines.append(node.lineno)
    return lines


@pytest.mark.db_independent
class TestOnlyTheDoorWritesTaskState:
    def test_no_other_module_writes_the_state_column(self) -> None:
        writers = {}
        for path in sorted(SOURCE.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lines = _writes_task_state(ast.parse(text), text)
            if lines and path != THE_DOOR:
                writers[str(path.relative_to(SOURCE))] = lines
        assert writers == {}, f"task state written outside engine/tasks/moves.py: {writers}"

    def test_the_scan_finds_the_doors_own_writes(self) -> None:
        text = THE_DOOR.read_text(encoding="utf-8")
        assert len(_writes_task_state(ast.parse(text), text)) == 2  # the compare-and-set and the one-statement claim

    @pytest.mark.parametrize(
        "code",
        [
            "session.execute(update(HumanTask).where(HumanTask.id == i).values(state='cancelled'))",
            "session.execute(update(HumanTask).values(**{'state': 'open'}))",
            "task.state = TaskState.EXPIRED",
            "tasks = HumanTask.__table__\nsession.execute(update(tasks).values(state='open'))",
            "session.execute(text('UPDATE human_tasks SET state = :s'))",
        ],
    )
    def test_the_scan_catches_a_second_door(self, code: str) -> None:
        assert len(_writes_task_state(ast.parse(code), code)) == 1


def _move_events(task_id: str) -> list[AuditEvent]:
    with session_scope() as session:
        query = select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.type != "task.created")
        return [e for e in session.scalars(query.order_by(AuditEvent.id)) if "action" in e.data]


class TestEveryMoveHasOneShape:
    def test_claim_release_assign_delegate_complete(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        make_user(name="li", roles=("warehouse",))
        boss, _ = make_user(name="boss", roles=("operations",))
        task_id = make_task()
        with session_scope() as session:
            claim_task(session, task_id=task_id, principal=wu)
            release_task(session, task_id=task_id, principal=wu, reason="lunch")
            assign_task(session, task_id=task_id, principal=boss, user="wu")
            delegate_task(session, task_id=task_id, principal=wu, user="li", reason="covering")
        li = make_user(name="li2", roles=("warehouse",))[0]
        with session_scope() as session:
            assign_task(session, task_id=task_id, principal=boss, user=li.name, reason="li went home")
            complete_task(session, task_id=task_id, principal=li, data=GOOD_INSPECTION)
        events = _move_events(task_id)
        assert [
            (e.type, e.data["from"], e.data["to"], e.data["assignee"], e.data["previous_assignee"]) for e in events
        ] == [
            ("task.claimed", "open", "claimed", "wu", None),
            ("task.released", "claimed", "open", None, "wu"),
            ("task.assigned", "open", "claimed", "wu", None),
            ("task.delegated", "claimed", "claimed", "li", "wu"),
            ("task.assigned", "claimed", "claimed", "li2", "li"),
            ("task.completed", "claimed", "completed", "li2", "li2"),
        ]
        for event in events:
            assert set(event.data) == MOVE_SHAPE, event.type
            assert (event.data["actor"], event.data["at"]) == (event.actor, event.at.isoformat())
        assert [e.data["reason"] for e in events] == ["", "lunch", "", "covering", "li went home", ""]

    def test_cancel_and_expire(self, clean_db: str) -> None:
        boss, _ = make_user(name="boss", roles=("operations",))
        cancelled = make_task()
        with session_scope() as session:
            instance_id = session.get(HumanTask, cancelled).instance_id
            cancel_instance(session, instance_id=instance_id, principal=boss, reason="customer withdrew")
        expiring = make_task(step="await_parcel")
        with session_scope() as session:
            expires_at = session.get(HumanTask, expiring).expires_at
        with session_scope() as session:
            expire_due_tasks(session, now=expires_at + timedelta(seconds=1))
        [cancel] = _move_events(cancelled)
        [expire] = _move_events(expiring)
        assert (cancel.data["to"], cancel.data["reason"], cancel.actor) == ("cancelled", "instance cancelled", "boss")
        assert (expire.data["to"], expire.data["reason"], expire.actor) == ("expired", "expired", "system")
        assert set(cancel.data) == set(expire.data) == MOVE_SHAPE

    def test_the_kpis_read_the_moves_that_put_a_person_on_a_task(self) -> None:
        assert HOLDING_EVENT_TYPES == ("task.claimed", "task.assigned", "task.delegated")


class TestTheCompareAndSet:
    def test_a_move_from_a_stale_read_changes_nothing(self, clean_db: str) -> None:
        wu, _ = make_user(name="wu", roles=("warehouse",))
        task_id = make_task()
        with session_scope() as session:
            stale = session.get(HumanTask, task_id)
            session.expunge(stale)
        with session_scope() as session:
            claim_task(session, task_id=task_id, principal=wu)
        with session_scope() as session:
            assert try_move_task(session, stale, TaskAction.CANCEL, actor="boss", at=utcnow()) is None
            with pytest.raises(VersionMismatch, match="changed meanwhile"):
                move_task(session, stale, TaskAction.CANCEL, actor="boss")
        with session_scope() as session:
            assert session.get(HumanTask, task_id).state == "claimed"
        assert [e.type for e in _move_events(task_id)] == ["task.claimed"]
