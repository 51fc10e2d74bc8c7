"""The breach forecast: queue position over recent throughput, stored only when it changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.sla.forecast import RESTATE_AFTER, refresh_forecasts
from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox
from tests.factories import add_task_row, make_instance

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
WAREHOUSE = Principal(name="wu", roles=frozenset({"warehouse"}))


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def stored(task_ids: list[str]) -> list[tuple[datetime | None, bool, int]]:
    with session_scope() as session:
        rows = {t.id: t for t in session.scalars(select(HumanTask).where(HumanTask.id.in_(task_ids)))}
        return [(rows[i].expected_finish_at, rows[i].at_risk, rows[i].version) for i in task_ids]


def refresh(now: datetime = NOW) -> int:
    with session_scope() as session:
        return refresh_forecasts(session, now=now)


@pytest.fixture
def instance_id(clean_db: str) -> str:
    return make_instance()


@pytest.fixture
def queue(instance_id: str) -> list[str]:
    """Warehouse finished 14 tasks in the last 7 days (one per 12 h); five wait, listed here in service order."""
    for day in range(1, 8):
        for hour in (2, 9):
            add_task_row(
                instance_id=instance_id,
                state="completed",
                created_at=at(-24 * day - hour - 1),
                completed_at=at(-24 * day + 24 - hour),
                completed_by="wu",
            )
    # Outside the window, or another role's: not the warehouse's recent throughput.
    add_task_row(
        instance_id=instance_id, state="completed", created_at=at(-300), completed_at=at(-200), completed_by="wu"
    )
    add_task_row(instance_id=instance_id, role="visual", state="completed", created_at=at(-5), completed_at=at(-1))
    # Inserted out of order: the forecast must serve them by due time, then priority, then age.
    no_due = add_task_row(instance_id=instance_id, created_at=at(-50))
    due_40 = add_task_row(instance_id=instance_id, created_at=at(-3), due_at=at(40))
    due_30_plain = add_task_row(instance_id=instance_id, created_at=at(-9), due_at=at(30))
    due_30_urgent = add_task_row(instance_id=instance_id, created_at=at(-1), due_at=at(30), priority=5)
    due_20 = add_task_row(instance_id=instance_id, state="claimed", assignee="wu", created_at=at(-2), due_at=at(20))
    return [due_20, due_30_urgent, due_30_plain, due_40, no_due]


class TestRefreshForecasts:
    def test_the_back_of_a_long_queue_is_at_risk(self, queue: list[str]) -> None:
        assert refresh() == 5
        # 14 done in 7 days: one per 12 h, so the k-th finishes 12 × (k + 1) hours from now.
        assert [(finish, risk) for finish, risk, _ in stored(queue)] == [
            (at(12), False),  # due 20
            (at(24), False),  # due 30, priority 5
            (at(36), True),  # due 30
            (at(48), True),  # due 40
            (at(60), False),  # no due time: never at risk
        ]

    def test_a_role_that_finished_nothing_has_no_forecast(self, instance_id: str) -> None:
        overdue = add_task_row(instance_id=instance_id, role="visual", created_at=at(-10), due_at=at(-1))
        due_later = add_task_row(instance_id=instance_id, role="visual", created_at=at(-10), due_at=at(1))
        no_due = add_task_row(instance_id=instance_id, role="visual", created_at=at(-10))
        refresh()
        assert [(finish, risk) for finish, risk, _ in stored([overdue, due_later, no_due])] == [
            (None, True),
            (None, False),
            (None, False),
        ]

    def test_only_changed_rows_are_written_and_versions_stay(self, queue: list[str]) -> None:
        refresh()
        versions = [version for _, _, version in stored(queue)]
        assert refresh() == 0
        # Moving less than RESTATE_AFTER is not worth a write; moving further is.
        assert refresh(NOW + RESTATE_AFTER / 2) == 0
        assert refresh(NOW + RESTATE_AFTER) == 5
        # An earlier due time flips one task to at risk: that row alone changes.
        with session_scope() as session:
            session.execute(update(HumanTask).where(HumanTask.id == queue[0]).values(due_at=at(1)))
        assert refresh(NOW + RESTATE_AFTER) == 1
        assert stored(queue)[0][1] is True
        assert [version for _, _, version in stored(queue)] == versions

    def test_ended_tasks_leave_the_queue(self, queue: list[str]) -> None:
        with session_scope() as session:
            session.execute(
                update(HumanTask).where(HumanTask.id == queue[0]).values(state="completed", completed_at=at(-1))
            )
        refresh()
        # The front one is done: 15 done in 7 days now, and the other four move up one place.
        finishes = [finish for finish, _, _ in stored(queue[1:])]
        per_task = timedelta(days=7) / 15
        assert finishes == [NOW + per_task * (k + 1) for k in range(4)]


class TestInboxAtRisk:
    def test_filter_and_sort_by_risk(self, queue: list[str]) -> None:
        refresh()
        with session_scope() as session:
            risky, _ = list_inbox(session, principal=WAREHOUSE, filters=InboxFilter(at_risk=True))
            safe, _ = list_inbox(session, principal=WAREHOUSE, filters=InboxFilter(at_risk=False))
            ordered, _ = list_inbox(session, principal=WAREHOUSE, filters=InboxFilter(sort="at_risk"))
        assert [t.id for t in risky] == [queue[2], queue[3]]
        assert {t.id for t in safe} == {queue[0], queue[1], queue[4]}
        # At risk first, then by due time (no due time last).
        assert [t.id for t in ordered] == [queue[2], queue[3], queue[0], queue[1], queue[4]]

    def test_an_ended_task_is_never_at_risk(self, queue: list[str]) -> None:
        refresh()
        with session_scope() as session:
            session.execute(
                update(HumanTask).where(HumanTask.id == queue[2]).values(state="completed", completed_at=NOW)
            )
        with session_scope() as session:
            risky, _ = list_inbox(session, principal=WAREHOUSE, filters=InboxFilter(at_risk=True, state="completed"))
        assert risky == []
