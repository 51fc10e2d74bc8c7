"""SLA: due times of new tasks, and the sweeps that remind, flag overdue and escalate, each exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ecomflow.engine.access import tasks_workable_by, working_roles
from ecomflow.engine.db.models import AuditEvent, HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions import versions
from ecomflow.engine.definitions.business_calendar import BusinessCalendar
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import StepSpec
from ecomflow.engine.definitions.sla_policy import MANAGERS, Escalation
from ecomflow.engine.errors import NotFound
from ecomflow.engine.instances.lifecycle import cancel_instance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.sla.sweeper import SweepResult, sweep_once
from ecomflow.engine.sla.sweeps import (
    DueTimes,
    SweepBatch,
    due_times,
    escalate_overdue_tasks,
    remind_due_tasks,
)
from ecomflow.engine.tasks.actions import claim_task, get_visible_task
from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox
from ecomflow.engine.tasks.step_tasks import open_task
from tests.factories import make_instance, make_task, make_user, pin_to_edited_version, step_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=SHANGHAI)
SATURDAY_NIGHT = datetime(2026, 11, 28, 23, tzinfo=SHANGHAI)
MINUTE = timedelta(minutes=1)
INQUIRY = {"customer": "小王", "question": "这件外套有M码吗？"}


def shanghai(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def step(process: str, key: str) -> StepSpec:
    return get_definitions().process(process).step(key)


def inspection_escalating_to(role: str | None) -> Callable[[dict[str, Any]], None]:
    """Return an edit of flows.yaml: the returns inspection escalates to the role (None: `escalate: false`)."""

    def edit(raw: dict[str, Any]) -> None:
        step_of(raw, "returns_exchange", "inspect")["escalate"] = {"to": role} if role else False

    return edit


def rename_inspection(raw: dict[str, Any]) -> None:
    """Rename the returns inspection in flows.yaml (and the approval that refers to it): `inspect` is gone."""
    step_of(raw, "returns_exchange", "inspect")["key"] = "inspect_parcel"
    approval = step_of(raw, "returns_exchange", "deduction_approval")
    approval["reject_to"] = approval["approves"] = "inspect_parcel"


def open_inspection(*, now: datetime = MONDAY_10, version: Callable[[dict[str, Any]], None] | None = None) -> str:
    """Open a returns inspection (warehouse, due in 2 working days) as its flow would, on an edited version if given."""
    instance_id = make_instance()
    if version is not None:
        pin_to_edited_version(instance_id, version)
    with session_scope() as session:
        spec = get_definitions().process("returns_exchange").step("inspect")
        return open_task(session, instance_id=instance_id, step=spec, now=now).id


def open_inquiry(*, now: datetime = SATURDAY_NIGHT) -> str:
    """Open a pre-sales inquiry (customer service, 10 min wall clock, escalates to operations with release)."""
    instance_id = make_instance(process="presales_order", params=INQUIRY)
    return make_task(process="presales_order", step="answer_inquiry", instance_id=instance_id, now=now)


def task_row(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def events(task_id: str, type: str) -> list[AuditEvent]:
    with session_scope() as session:
        query = select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.type == type).order_by(AuditEvent.id)
        return list(session.scalars(query))


def count_events(type: str) -> dict[str, int]:
    """Return how many events of the type each task has."""
    with session_scope() as session:
        query = select(AuditEvent.task_id, func.count()).where(AuditEvent.type == type).group_by(AuditEvent.task_id)
        return dict(session.execute(query).all())


def claim(task_id: str, principal: Principal) -> HumanTask:
    with session_scope() as session:
        return claim_task(session, task_id=task_id, principal=principal)


def inbox_ids(principal: Principal) -> list[str]:
    with session_scope() as session:
        tasks, _ = list_inbox(session, principal=principal, filters=InboxFilter(limit=200))
        return [t.id for t in tasks]


def race(call: Callable[[], object], *, callers: int = 2) -> list[object]:
    """Run call in several threads released at the same moment; return every result (or raise the first error)."""
    start = threading.Barrier(callers)

    def run() -> object:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=callers) as pool:
        futures = [pool.submit(run) for _ in range(callers)]
        return [f.result() for f in futures]


class TestDueTimes:
    def test_a_business_step_counts_working_time(self) -> None:
        definitions = get_definitions()
        times = due_times(
            calendar=definitions.calendar, step=step("returns_exchange", "inspect"), sla=definitions.sla, now=MONDAY_10
        )
        # 2 working days = 15 h; 80 % = 12 h: 6.5 h on Monday, 5.5 h on Tuesday. Escalation: 4 working hours past due.
        assert times == DueTimes(
            due_at=shanghai(11, 25, 10), remind_at=shanghai(11, 24, 16), escalate_at=shanghai(11, 25, 15, 30)
        )

    def test_a_wall_clock_step_counts_every_minute(self) -> None:
        definitions = get_definitions()
        inquiry = step("presales_order", "answer_inquiry")
        times = due_times(calendar=definitions.calendar, step=inquiry, sla=definitions.sla, now=SATURDAY_NIGHT)
        assert times == DueTimes(
            due_at=SATURDAY_NIGHT + 10 * MINUTE,
            remind_at=SATURDAY_NIGHT + 8 * MINUTE,
            escalate_at=SATURDAY_NIGHT + 15 * MINUTE,
        )

    def test_a_step_without_due_time_has_no_times(self) -> None:
        definitions = get_definitions()
        review = step("ads_and_events", "review_result")
        assert due_times(calendar=definitions.calendar, step=review, sla=definitions.sla, now=MONDAY_10) == DueTimes()

    def test_a_step_without_escalation_never_escalates(self) -> None:
        definitions = get_definitions()
        quiet = replace(step("returns_exchange", "inspect"), escalate=None)
        times = due_times(calendar=definitions.calendar, step=quiet, sla=definitions.sla, now=MONDAY_10)
        assert times.due_at == shanghai(11, 25, 10) and times.escalate_at is None

    def test_an_escalation_without_delay_is_at_the_due_time(self) -> None:
        definitions = get_definitions()
        at_once = replace(step("returns_exchange", "inspect"), escalate=Escalation(to=MANAGERS))
        times = due_times(calendar=definitions.calendar, step=at_once, sla=definitions.sla, now=MONDAY_10)
        assert times.escalate_at == times.due_at

    def test_the_reminder_fraction_comes_from_the_policy(self) -> None:
        definitions = get_definitions()
        half = replace(definitions.sla, remind_at=0.5)
        times = due_times(
            calendar=definitions.calendar, step=step("returns_exchange", "inspect"), sla=half, now=MONDAY_10
        )
        # Half of 15 working hours: 6.5 h on Monday and 1 h on Tuesday.
        assert times.remind_at == shanghai(11, 24, 10)


class TestOpenTask:
    def test_stores_due_reminder_escalation_and_priority(self, clean_db: str) -> None:
        task = task_row(open_inquiry())
        assert task.priority == 100
        assert (task.due_at, task.remind_at, task.escalate_at) == (
            SATURDAY_NIGHT + 10 * MINUTE,
            SATURDAY_NIGHT + 8 * MINUTE,
            SATURDAY_NIGHT + 15 * MINUTE,
        )

    def test_a_task_opened_on_friday_evening_is_due_in_working_days(self, clean_db: str) -> None:
        task = task_row(open_inspection(now=shanghai(11, 27, 19)))
        # Counting starts Monday 09:00; two working days later is Wednesday 09:00.
        assert task.due_at == shanghai(12, 2, 9)
        assert task.priority == 50

    def test_the_parcel_wait_expires_in_wall_time(self, clean_db: str) -> None:
        friday_evening = shanghai(11, 27, 20)
        instance_id = make_instance()
        task = task_row(make_task(step="await_parcel", instance_id=instance_id, now=friday_evening))
        assert task.expires_at == friday_evening + timedelta(days=7)
        assert task.due_at == shanghai(12, 9, 9)  # 7 working days after Monday 09:00

    def test_the_current_calendar_is_used(self, clean_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
        every_hour = BusinessCalendar(timezone="UTC", working_hours=((0, 23 * 60 + 59),))
        on_every_hour = replace(get_definitions(), calendar=every_hour)
        monkeypatch.setattr(versions, "get_definitions", lambda: on_every_hour)
        task = task_row(open_inspection(now=shanghai(11, 27, 20)))
        assert task.due_at == shanghai(11, 29, 20)


class TestReminder:
    def test_reminds_at_the_reminder_point_and_not_before(self, clean_db: str) -> None:
        task_id = open_inspection()
        remind_at = task_row(task_id).remind_at
        assert sweep_once(now=remind_at - MINUTE).reminded_due == 0
        assert events(task_id, "task.reminded") == []
        assert sweep_once(now=remind_at).reminded_due == 1
        assert sweep_once(now=remind_at + 2 * MINUTE).reminded_due == 0
        [reminded] = events(task_id, "task.reminded")
        assert reminded.actor == "system" and reminded.at == remind_at
        assert reminded.data["reason"] == "due_soon" and reminded.data["role"] == "warehouse"
        assert reminded.data["due_at"] == task_row(task_id).due_at.isoformat()
        assert task_row(task_id).reminded_at == remind_at

    def test_names_the_assignee_of_a_claimed_task(self, clean_db: str) -> None:
        task_id = open_inspection()
        worker, _ = make_user(roles=("warehouse",))
        claim(task_id, worker)
        sweep_once(now=task_row(task_id).remind_at)
        assert events(task_id, "task.reminded")[0].data["assignee"] == worker.name

    def test_a_task_first_swept_after_its_due_time_is_flagged_not_reminded(self, clean_db: str) -> None:
        task_id = open_inspection()
        result = sweep_once(now=task_row(task_id).due_at)
        assert (result.reminded_due, result.overdue) == (0, 1)
        assert events(task_id, "task.reminded") == []

    def test_a_cancelled_task_is_neither_reminded_nor_flagged_nor_escalated(self, clean_db: str) -> None:
        task_id = open_inspection()
        manager, _ = make_user(roles=("operations",))
        with session_scope() as session:
            cancel_instance(session, instance_id=task_row(task_id).instance_id, principal=manager)
        for moment in (task_row(task_id).remind_at, task_row(task_id).due_at, task_row(task_id).escalate_at):
            result = sweep_once(now=moment)
            assert (result.reminded_due, result.overdue, result.escalated) == (0, 0, 0)


class TestOverdue:
    def test_flags_at_the_due_time_once(self, clean_db: str) -> None:
        task_id = open_inspection()
        due_at = task_row(task_id).due_at
        assert sweep_once(now=due_at - MINUTE).overdue == 0
        assert task_row(task_id).overdue_at is None
        assert sweep_once(now=due_at).overdue == 1
        assert sweep_once(now=due_at + MINUTE).overdue == 0
        [overdue] = events(task_id, "task.overdue")
        assert overdue.actor == "system" and overdue.data["due_at"] == due_at.isoformat()
        assert task_row(task_id).overdue_at == due_at


class TestEscalation:
    def test_escalates_to_the_managers_four_working_hours_after_due(self, clean_db: str) -> None:
        task_id = open_inspection()
        worker, _ = make_user(roles=("warehouse",))
        claimed = claim(task_id, worker)
        escalate_at = task_row(task_id).escalate_at
        assert escalate_at == shanghai(11, 25, 15, 30)
        assert sweep_once(now=escalate_at - MINUTE).escalated == 0
        assert sweep_once(now=escalate_at).escalated == 1
        assert sweep_once(now=escalate_at + MINUTE).escalated == 0
        task = task_row(task_id)
        assert (task.escalated_at, task.escalated_to) == (escalate_at, MANAGERS)
        # Without release the assignee keeps the task.
        assert (task.state, task.assignee, task.version) == ("claimed", worker.name, claimed.version)
        [escalated] = events(task_id, "task.escalated")
        assert escalated.actor == "system"
        assert {k: escalated.data[k] for k in ("to", "release", "previous_assignee")} == {
            "to": MANAGERS,
            "release": False,
            "previous_assignee": worker.name,
        }
        assert events(task_id, "task.released") == []

    def test_release_puts_a_claimed_task_back_in_the_queue(self, clean_db: str) -> None:
        task_id = open_inquiry()
        first, _ = make_user(roles=("customer_service",))
        second, _ = make_user(roles=("customer_service",))
        claimed = claim(task_id, first)
        assert sweep_once(now=SATURDAY_NIGHT + 15 * MINUTE).escalated == 1
        task = task_row(task_id)
        assert (task.state, task.assignee, task.claimed_at) == ("open", None, None)
        assert task.version == claimed.version + 1 and task.escalated_to == "operations"
        [escalated] = events(task_id, "task.escalated")
        [released] = events(task_id, "task.released")
        assert escalated.id < released.id
        assert escalated.data["release"] is True and escalated.data["previous_assignee"] == first.name
        assert released.actor == "system"
        assert {k: released.data[k] for k in ("reason", "previous_assignee", "from")} == {
            "reason": "escalation",
            "previous_assignee": first.name,
            "from": "claimed",
        }
        assert claim(task_id, second).assignee == second.name

    def test_release_leaves_an_unclaimed_task_as_it_is(self, clean_db: str) -> None:
        task_id = open_inquiry()
        version = task_row(task_id).version
        assert sweep_once(now=SATURDAY_NIGHT + 15 * MINUTE).escalated == 1
        assert (task_row(task_id).state, task_row(task_id).version) == ("open", version)
        assert events(task_id, "task.released") == []

    def test_a_presales_inquiry_runs_on_the_ten_minute_wall_clock(self, clean_db: str) -> None:
        task_id = open_inquiry()
        expected = [  # minutes after opening on a Saturday night: (reminded, overdue, escalated)
            (7.9, (0, 0, 0)),
            (8, (1, 0, 0)),
            (9.9, (0, 0, 0)),
            (10, (0, 1, 0)),
            (14.9, (0, 0, 0)),
            (15, (0, 0, 1)),
        ]
        for minutes, counts in expected:
            result = sweep_once(now=SATURDAY_NIGHT + minutes * MINUTE)
            assert (result.reminded_due, result.overdue, result.escalated) == counts, minutes
        assert task_row(task_id).escalated_to == "operations"

    def test_the_escalated_role_may_see_and_claim_the_task(self, clean_db: str) -> None:
        task_id = open_inspection(version=inspection_escalating_to("customer_service"))
        service, _ = make_user(roles=("customer_service",))
        designer, _ = make_user(roles=("visual",))
        assert task_id not in inbox_ids(service)
        with session_scope() as session, pytest.raises(NotFound):
            get_visible_task(session, task_id, principal=service)

        with session_scope() as session:
            batch = escalate_overdue_tasks(session, now=task_row(task_id).escalate_at)
        assert batch.changed == (task_id,)
        assert working_roles(task_row(task_id)) == {"warehouse", "customer_service"}
        assert task_id in inbox_ids(service)
        assert task_id not in inbox_ids(designer)
        with session_scope() as session, pytest.raises(NotFound):
            get_visible_task(session, task_id, principal=designer)
        assert claim(task_id, service).assignee == service.name

    def test_a_task_escalated_to_the_managers_gains_no_role(self, clean_db: str) -> None:
        task_id = open_inspection()
        sweep_once(now=task_row(task_id).escalate_at)
        service, _ = make_user(roles=("customer_service",))
        assert working_roles(task_row(task_id)) == {"warehouse"}
        with pytest.raises(NotFound):
            claim(task_id, service)

    def test_a_step_whose_version_lost_its_escalation_still_escalates_to_the_managers(self, clean_db: str) -> None:
        task_id = open_inspection(version=inspection_escalating_to("customer_service"))
        pin_to_edited_version(task_row(task_id).instance_id, inspection_escalating_to(None))
        with session_scope() as session:
            escalate_overdue_tasks(session, now=task_row(task_id).escalate_at)
        assert task_row(task_id).escalated_to == MANAGERS

    def test_a_step_its_version_does_not_define_escalates_to_the_managers(self, clean_db: str) -> None:
        task_id = open_inspection(version=inspection_escalating_to("customer_service"))
        pin_to_edited_version(task_row(task_id).instance_id, rename_inspection)
        with session_scope() as session:
            escalate_overdue_tasks(session, now=task_row(task_id).escalate_at)
        assert task_row(task_id).escalated_to == MANAGERS

    def test_the_instance_s_version_decides_not_the_current_file(self, clean_db: str) -> None:
        to_service = open_inspection(version=inspection_escalating_to("customer_service"))
        as_shipped = open_inspection()
        with session_scope() as session:
            escalate_overdue_tasks(session, now=max(task_row(t).escalate_at for t in (to_service, as_shipped)))
        assert (task_row(to_service).escalated_to, task_row(as_shipped).escalated_to) == ("customer_service", MANAGERS)


class TestVisibilityRule:
    def test_the_query_condition_matches_the_python_rule(self, clean_db: str) -> None:
        escalated = open_inspection(version=inspection_escalating_to("visual"))
        plain = open_inspection()
        sweep_once(now=task_row(plain).escalate_at)
        with session_scope() as session:
            for roles in ({"visual"}, {"warehouse"}, {"customer_service"}, {"visual", "product"}):
                matched = set(session.scalars(select(HumanTask.id).where(tasks_workable_by(roles))))
                expected = {t for t in (escalated, plain) if working_roles(session.get(HumanTask, t)) & roles}
                assert matched == expected, roles


class TestConcurrentSweepers:
    @pytest.mark.parametrize("round_", range(3))
    def test_two_sweepers_at_the_same_moment_do_each_step_once(self, clean_db: str, round_: int) -> None:
        instance_id = make_instance()
        task_ids = [make_task(instance_id=instance_id, round=i + 1, now=MONDAY_10) for i in range(10)]
        first = task_row(task_ids[0])
        moments = {"reminded_due": first.remind_at, "overdue": first.due_at, "escalated": first.escalate_at}
        for field, moment in moments.items():
            results: list[SweepResult] = race(lambda moment=moment: sweep_once(now=moment))
            assert sum(getattr(r, field) for r in results) == len(task_ids), field
        for type in ("task.reminded", "task.overdue", "task.escalated"):
            assert count_events(type) == dict.fromkeys(task_ids, 1), type
        assert count_events("task.released") == {}

    def test_batched_sweepers_share_the_work_without_overlap(self, clean_db: str) -> None:
        instance_id = make_instance()
        task_ids = {make_task(instance_id=instance_id, round=i + 1, now=MONDAY_10) for i in range(20)}
        moment = task_row(next(iter(task_ids))).remind_at

        def sweep_in_batches_of_three() -> list[str]:
            changed: list[str] = []
            while True:
                with session_scope() as session:
                    batch: SweepBatch = remind_due_tasks(session, now=moment, limit=3)
                changed.extend(batch.changed)
                if not batch.more_may_be_due:
                    return changed

        one, other = race(sweep_in_batches_of_three)
        assert not set(one) & set(other)
        assert set(one) | set(other) == task_ids
        assert count_events("task.reminded") == dict.fromkeys(task_ids, 1)
