"""The inbox over HTTP shows each task's forecast, overdue flag and escalation, and filters and sorts by risk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import add_task_row, make_instance


def test_inbox_filters_and_sorts_by_risk_and_shows_the_forecast(login: Callable[..., Caller]) -> None:
    worker = login("warehouse")
    now = utcnow()
    instance_id = make_instance()
    safe = add_task_row(instance_id=instance_id, created_at=now - timedelta(hours=2), due_at=now + timedelta(hours=1))
    risky = add_task_row(
        instance_id=instance_id, created_at=now - timedelta(hours=1), due_at=now + timedelta(hours=5), priority=2
    )
    late = add_task_row(instance_id=instance_id, created_at=now - timedelta(hours=3), due_at=now - timedelta(hours=1))
    finish = now + timedelta(hours=9)
    with session_scope() as session:
        session.execute(
            update(HumanTask)
            .where(HumanTask.id == risky)
            .values(at_risk=True, expected_finish_at=finish, escalated_to="managers")
        )

    at_risk = worker.get("/tasks", params={"at_risk": "true"}).json()["items"]
    assert [t["id"] for t in at_risk] == [risky]
    shown = at_risk[0]
    assert (shown["at_risk"], shown["overdue"], shown["priority"], shown["escalated_to"]) == (
        True,
        False,
        2,
        "managers",
    )
    assert shown["expected_finish_at"] is not None

    others = worker.get("/tasks", params={"at_risk": "false"}).json()["items"]
    assert [(t["id"], t["overdue"], t["at_risk"]) for t in others] == [(late, True, False), (safe, False, False)]

    ordered = worker.get("/tasks", params={"sort": "at_risk"}).json()["items"]
    assert [t["id"] for t in ordered] == [risky, late, safe]


def test_at_risk_must_be_a_boolean(login: Callable[..., Caller]) -> None:
    body = assert_error(login("warehouse").get("/tasks", params={"at_risk": "maybe"}), 422, "ValidationFailed")
    assert field_names(body) == ["at_risk"]
