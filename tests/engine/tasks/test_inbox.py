"""The inbox query: visibility, filters, sorts and keyset pages."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import claim_task, complete_task
from ecomflow.engine.tasks.inbox import MAX_LIMIT, NO_DUE, SORTS, InboxFilter, list_inbox
from tests.factories import make_instance, make_task, make_user


def _inbox(principal: Principal, **filters: object) -> tuple[list[str], str | None]:
    with session_scope() as session:
        rows, cursor = list_inbox(session, principal=principal, filters=InboxFilter(**filters))
        return [t.id for t in rows], cursor


def _ids(principal: Principal, **filters: object) -> list[str]:
    return _inbox(principal, **filters)[0]


def _rows(task_ids: list[str]) -> dict[str, HumanTask]:
    with session_scope() as session:
        return {task_id: session.get(HumanTask, task_id) for task_id in task_ids}


def _claim(task_id: str, principal: Principal) -> None:
    with session_scope() as session:
        claim_task(session, task_id=task_id, principal=principal)


def _refusal(principal: Principal, **filters: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        _inbox(principal, **filters)
    return [(p.field, p.rule) for p in refused.value.problems]


class TestVisibility:
    def test_inbox_holds_only_the_callers_roles(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        clerk, _ = make_user(roles=("customer_service",))
        inspect = make_task(step="inspect")
        review = make_task(step="cs_review")
        parcel = make_task(step="await_parcel")
        assert _ids(worker) == [inspect]
        assert set(_ids(clerk)) == {review, parcel}
        assert inspect not in _ids(clerk, state="open", sort="created", limit=MAX_LIMIT)

    @pytest.mark.parametrize("manager_role", ["operations", "owner"])
    def test_managers_see_every_role(self, clean_db: str, manager_role: str) -> None:
        manager, _ = make_user(roles=(manager_role,))
        tasks = {make_task(step=step) for step in ("inspect", "cs_review", "goodwill_approval")}
        assert set(_ids(manager)) == tasks


class TestFilters:
    def test_default_is_active_tasks_and_state_selects_one(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        done, claimed, open_ = (make_task() for _ in range(3))
        _claim(done, worker)
        with session_scope() as session:
            complete_task(
                session,
                task_id=done,
                principal=worker,
                data={"condition": "ok", "restock": "yes"},
            )
        _claim(claimed, worker)
        assert set(_ids(worker)) == {claimed, open_}
        assert _ids(worker, state="completed") == [done]
        assert _ids(worker, state="claimed") == [claimed]
        assert _ids(worker, state="open") == [open_]
        assert _refusal(worker, state="finished") == [("state", "enum")]

    def test_mine_keeps_my_claimed_tasks(self, clean_db: str) -> None:
        me, _ = make_user(roles=("warehouse",))
        colleague, _ = make_user(roles=("warehouse",))
        mine, theirs, _open = (make_task() for _ in range(3))
        _claim(mine, me)
        _claim(theirs, colleague)
        assert _ids(me, mine=True) == [mine]
        assert _ids(colleague, mine=True) == [theirs]

    def test_role_filter(self, clean_db: str) -> None:
        owner, _ = make_user(roles=("owner",))
        inspect = make_task(step="inspect")
        make_task(step="cs_review")
        assert _ids(owner, role="warehouse") == [inspect]
        assert _ids(owner, role="visual") == []

    def test_process_filter(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        inspect = make_task(step="inspect")
        handover = make_task(process="product_photo_shoot", step="sample_handover")
        assert _ids(worker, process="returns_exchange") == [inspect]
        assert _ids(worker, process="product_photo_shoot") == [handover]
        assert set(_ids(worker)) == {inspect, handover}

    def test_overdue_keeps_tasks_past_their_due_time(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        late = make_task()
        make_task()
        # Set outright: due times count business hours, so "3 days ago" is not always overdue.
        _set_due(late, utcnow() - timedelta(minutes=1))
        assert _ids(worker, overdue=True) == [late]


def _set_due(task_id: str, due_at: datetime | None) -> None:
    with session_scope() as session:
        session.execute(update(HumanTask).where(HumanTask.id == task_id).values(due_at=due_at))


class TestSorts:
    def test_due_puts_the_soonest_first_and_no_due_last(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        now = utcnow()
        later = make_task(now=now)
        sooner = make_task(now=now - timedelta(hours=5))
        undated = make_task(now=now - timedelta(days=1))
        # Set outright: in business time two creation moments outside working hours share one due time.
        _set_due(later, now + timedelta(hours=5))
        _set_due(sooner, now + timedelta(hours=1))
        _set_due(undated, None)
        assert _ids(worker, sort="due") == [sooner, later, undated]
        assert _ids(worker, sort="-due") == [undated, later, sooner]

    def test_priority_puts_the_highest_first_then_due(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        now = utcnow()
        low_soon = make_task(now=now - timedelta(hours=2), priority=0)
        high_late = make_task(now=now, priority=5)
        high_soon = make_task(now=now - timedelta(hours=1), priority=5)
        for task_id, hours in ((low_soon, 1), (high_late, 3), (high_soon, 2)):
            _set_due(task_id, now + timedelta(hours=hours))
        assert _ids(worker, sort="priority") == [high_soon, high_late, low_soon]

    def test_created_orders_by_creation_time(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        now = utcnow()
        second = make_task(now=now - timedelta(hours=1))
        first = make_task(now=now - timedelta(hours=2))
        third = make_task(now=now)
        assert _ids(worker, sort="created") == [first, second, third]
        assert _ids(worker, sort="-created") == [third, second, first]

    def test_unknown_sort_is_refused(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        assert _refusal(worker, sort="random") == [("sort", "enum")]


def _cursor_of(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _sort_key(sort: str, task: HumanTask) -> tuple[object, ...]:
    """The order each sort promises, computed in Python from the rows."""
    due = (task.due_at or NO_DUE).timestamp()
    created = task.created_at.timestamp()
    return {
        "due": (due, task.id),
        "-due": (-due, task.id),
        "priority": (-task.priority, due, task.id),
        "at_risk": (-int(task.at_risk), due, task.id),
        "created": (created, task.id),
        "-created": (-created, task.id),
    }[sort]


class TestKeysetPages:
    @pytest.fixture
    def many_tasks(self, clean_db: str) -> tuple[Principal, list[str]]:
        """25 warehouse tasks with deliberate ties in due, created and priority, two without a due time."""
        worker, _ = make_user(roles=("warehouse",))
        instance_id = make_instance()
        base = utcnow().replace(microsecond=0)
        task_ids = [
            make_task(instance_id=instance_id, round=i + 1, now=base - timedelta(hours=i % 4), priority=i % 3)
            for i in range(25)
        ]
        _set_due(task_ids[3], None)
        _set_due(task_ids[17], None)
        return worker, task_ids

    @pytest.mark.parametrize("sort", list(SORTS))
    def test_walking_every_page_gives_each_task_once_in_order(
        self, many_tasks: tuple[Principal, list[str]], sort: str
    ) -> None:
        worker, task_ids = many_tasks
        pages, cursor = [], None
        while True:
            page, cursor = _inbox(worker, sort=sort, limit=10, cursor=cursor)
            pages.append(page)
            if cursor is None:
                break
            assert len(pages) < 10, "the cursor never ends"
        assert [len(p) for p in pages] == [10, 10, 5]
        walked = [task_id for page in pages for task_id in page]
        assert len(set(walked)) == 25 and set(walked) == set(task_ids)
        rows = _rows(task_ids)
        assert walked == sorted(task_ids, key=lambda t: _sort_key(sort, rows[t]))
        assert walked == _ids(worker, sort=sort, limit=MAX_LIMIT)

    def test_a_page_ending_exactly_at_the_end_has_no_cursor(self, many_tasks: tuple[Principal, list[str]]) -> None:
        worker, _ = many_tasks
        page, cursor = _inbox(worker, limit=25)
        assert len(page) == 25 and cursor is None

    @pytest.mark.parametrize(
        ("sort", "cursor"),
        [
            ("due", "garbage!!"),
            ("due", _cursor_of(b"{not json")),
            ("due", _cursor_of({"a": 1})),
            ("due", _cursor_of(["2025-01-01T00:00:00+00:00"])),
            ("due", _cursor_of(["not a time", "id"])),
            ("due", _cursor_of(["2025-01-01T00:00:00", "id"])),
            ("due", _cursor_of(["9999-12-31T23:00:00-05:00", "id"])),
            ("priority", _cursor_of([2**40, "2025-01-01T00:00:00+00:00", "id"])),
        ],
        ids=[
            "not-base64",
            "not-json",
            "not-a-list",
            "wrong-length",
            "bad-value",
            "naive-time",
            "time-overflow",
            "huge-int",
        ],
    )
    def test_garbage_cursor_is_refused_naming_cursor(self, clean_db: str, sort: str, cursor: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        make_task()
        assert _refusal(worker, sort=sort, cursor=cursor) == [("cursor", "format")]

    def test_cursor_of_another_sort_is_refused(self, many_tasks: tuple[Principal, list[str]]) -> None:
        worker, _ = many_tasks
        _, priority_cursor = _inbox(worker, sort="priority", limit=10)
        assert _refusal(worker, sort="due", cursor=priority_cursor) == [("cursor", "format")]

    @pytest.mark.parametrize("limit", [0, MAX_LIMIT + 1])
    def test_limit_out_of_range_is_refused(self, clean_db: str, limit: int) -> None:
        worker, _ = make_user(roles=("warehouse",))
        assert _refusal(worker, limit=limit) == [("limit", "max")]
