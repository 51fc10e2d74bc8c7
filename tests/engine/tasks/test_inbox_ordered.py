"""The index-ordered sorts (due, -due, priority, at_risk) give exactly the general query pages, for any caller."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks import inbox
from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox
from tests.factories import make_instance, make_task, make_user

ROLES = ("warehouse", "customer_service", "product")


@pytest.fixture
def mixed_tasks(clean_db: str) -> list[str]:
    """60 active tasks over three roles.

    Ties in due and priority, undated ones, at risk or not, escalations, assignees, both states.
    """
    rng = random.Random(7)
    base = utcnow().replace(microsecond=0)
    instance_id = make_instance()
    task_ids = [make_task(instance_id=instance_id, round=i + 1) for i in range(60)]
    with session_scope() as session:
        for task_id in task_ids:
            assignee = rng.choice([None, None, "ana", "bo"])
            session.execute(
                update(HumanTask)
                .where(HumanTask.id == task_id)
                .values(
                    role=rng.choice(ROLES),
                    escalated_to=rng.choice([None, None, None, "product"]),
                    assignee=assignee,
                    state="claimed" if assignee else "open",
                    due_at=None if rng.random() < 0.15 else base + timedelta(hours=rng.randint(0, 8)),
                    priority=rng.choice([0, 25, 50, 50, 75, 100]),
                    at_risk=rng.random() < 0.3,
                )
            )
    return task_ids


def _walk(principal: Principal, **filters: object) -> list[str]:
    walked, cursor = [], None
    while True:
        with session_scope() as session:
            page, cursor = list_inbox(
                session, principal=principal, filters=InboxFilter(limit=7, cursor=cursor, **filters)
            )
            walked += [task.id for task in page]
        if cursor is None:
            return walked


def _general(principal: Principal, monkeypatch: pytest.MonkeyPatch, **filters: object) -> list[str]:
    """The same walk through the general sorted query (the fast path switched off, its built statements too)."""
    ordered_query = inbox._ordered_query
    monkeypatch.setattr(inbox, "_ordered_query", lambda *args: None)
    try:
        return _walk(principal, **filters)
    finally:
        monkeypatch.setattr(inbox, "_ordered_query", ordered_query)


CALLERS = {
    "manager": ("operations",),
    "one role": ("warehouse",),
    "two roles": ("warehouse", "customer_service"),
    "escalation target": ("product",),
}


@pytest.mark.parametrize("sort", ["due", "-due", "priority", "at_risk"])
@pytest.mark.parametrize("caller", list(CALLERS))
def test_pages_equal_the_general_query(
    mixed_tasks: list[str], monkeypatch: pytest.MonkeyPatch, sort: str, caller: str
) -> None:
    principal, _ = make_user(roles=CALLERS[caller])
    answered = []
    ordered_query = inbox._ordered_query

    def counted(*args: object) -> object:
        answered.append(query := ordered_query(*args))
        return query

    monkeypatch.setattr(inbox, "_ordered_query", counted)
    fast = _walk(principal, sort=sort)
    monkeypatch.setattr(inbox, "_ordered_query", ordered_query)
    assert answered and None not in answered  # every page came from the index-ordered path
    assert fast == _general(principal, monkeypatch, sort=sort)
    assert len(fast) == len(set(fast)) and fast  # each task once, and the caller sees something


@pytest.mark.parametrize(
    "filters", [{"state": "claimed"}, {"role": "warehouse"}, {"at_risk": False}, {"overdue": True}]
)
@pytest.mark.parametrize("sort", ["due", "priority", "at_risk"])
def test_filters_equal_the_general_query(
    mixed_tasks: list[str], monkeypatch: pytest.MonkeyPatch, filters: dict, sort: str
) -> None:
    principal, _ = make_user(roles=("warehouse", "product"))
    assert _walk(principal, sort=sort, **filters) == _general(principal, monkeypatch, sort=sort, **filters)


@pytest.mark.parametrize("sort", ["due", "priority"])
def test_own_tasks_of_another_role_are_listed(
    mixed_tasks: list[str], monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    ana = Principal(name="ana", roles=frozenset({"visual"}))  # holds tasks of roles she lacks
    fast = _walk(ana, sort=sort)
    assert fast and fast == _general(ana, monkeypatch, sort=sort)


@pytest.mark.parametrize("sort", ["due", "at_risk"])
def test_a_statement_built_once_serves_each_user_and_cursor(
    mixed_tasks: list[str], monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    """Same roles, same filters: the second walk reuses the first one's statements with its own user and cursors."""
    ana, bo = (Principal(name=name, roles=frozenset({"warehouse"})) for name in ("ana", "bo"))
    with session_scope() as session:  # four-eyes keeps ana, not bo, from a third of the tasks
        session.execute(update(HumanTask).where(HumanTask.id.in_(mixed_tasks[::3])).values(excluded_users=["ana"]))
    walks = {}
    for principal in (ana, bo):
        for mine in (False, True):
            hits = inbox._ordered_query.cache_info().hits
            walks[principal.name, mine] = _walk(principal, sort=sort, mine=mine)
            if principal is bo:
                assert inbox._ordered_query.cache_info().hits > hits  # ana's walk built them
    for (name, mine), walked in walks.items():
        principal = ana if name == "ana" else bo
        assert walked == _general(principal, monkeypatch, sort=sort, mine=mine)
        assert walked  # each walk finds tasks: the comparison is not of two empty lists
    assert walks["ana", True] != walks["bo", True]
    excluded = set(mixed_tasks[::3])
    assert excluded & set(walks["bo", False]) and not excluded & set(walks["ana", False])
