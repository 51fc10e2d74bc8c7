"""Export rows: instances and tasks a page at a time, oldest first, only what the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.reports import exports
from ecomflow.engine.reports.exports import ListFilter, instance_rows, task_rows
from tests.factories import add_task_row, make_instance

BOSS = Principal(name="boss", roles=frozenset({"owner"}))
LIN = Principal(name="lin", roles=frozenset({"customer_service"}))
ALL_TIME = ListFilter(start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "PAGE_ROWS", 2)


class TestTaskRows:
    def test_pages_of_two_give_every_task_once_in_order_ties_included(self, clean_db: str, small_pages: None) -> None:
        instance_id = make_instance()
        same = utc("2026-11-11T01:00")
        made = [add_task_row(instance_id=instance_id, created_at=same) for _ in range(3)]
        made.append(add_task_row(instance_id=instance_id, created_at=utc("2026-11-11T02:00")))
        with session_scope() as session:
            rows = list(task_rows(session, principal=BOSS, where=ALL_TIME))
        assert [r[0] for r in rows] == [*sorted(made[:3]), made[3]]

    def test_staff_export_only_the_tasks_they_may_see(self, clean_db: str) -> None:
        instance_id = make_instance()
        theirs = add_task_row(instance_id=instance_id, role="customer_service", created_at=utc("2026-11-11T01:00"))
        add_task_row(instance_id=instance_id, role="warehouse", created_at=utc("2026-11-11T01:00"))
        with session_scope() as session:
            assert [r[0] for r in task_rows(session, principal=LIN, where=ALL_TIME)] == [theirs]

    def test_the_range_and_filters_apply(self, clean_db: str) -> None:
        instance_id = make_instance()
        inside = add_task_row(instance_id=instance_id, created_at=utc("2026-11-11T01:00"))
        add_task_row(instance_id=instance_id, created_at=utc("2026-11-12T01:00"))
        add_task_row(instance_id=instance_id, created_at=utc("2026-11-11T02:00"), state="completed")
        where = ListFilter(start=utc("2026-11-11T00:00"), end=utc("2026-11-12T00:00"), state="open")
        with session_scope() as session:
            assert [r[0] for r in task_rows(session, principal=BOSS, where=where)] == [inside]


class TestInstanceRows:
    def test_pages_and_visibility(self, clean_db: str, small_pages: None) -> None:
        mine = [make_instance(actor="lin") for _ in range(3)]
        other = make_instance(actor="wu")
        with session_scope() as session:
            everyone = [r[0] for r in instance_rows(session, principal=BOSS, where=ALL_TIME)]
            lins = [r[0] for r in instance_rows(session, principal=LIN, where=ALL_TIME)]
        assert sorted(everyone) == sorted([*mine, other]) and len(everyone) == 4
        assert sorted(lins) == sorted(mine)
