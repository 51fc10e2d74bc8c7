"""KPIs from a hand-built task history; every expected number is worked out by hand below.

The day is [T0, T0 + 24h); times are hours after T0. Done in the day:

| task | done by | role             | process          | queue | claimed | working | cycle | due met | round |
|------|---------|------------------|------------------|-------|---------|---------|-------|---------|-------|
| A    | wu      | warehouse        | returns_exchange | 1     | 0       | 3       | 4     | yes     | 1     |
| B    | wu      | warehouse        | returns_exchange | 2     | 3       | 3       | 8     | no      | 2     |
| C    | li      | customer_service | returns_exchange | 1     | 0       | 1       | 2     | no due  | 1     |
| D    | wu      | customer_service | page_design      | 1     | 1       | 7       | 9     | yes     | 3     |
| M    | li      | customer_service | returns_exchange | 1     | 0       | 1       | 2     | no      | 1     |

Open at the day's end (24): F (held by zhao, due 22: overdue), G (nobody, due 30), H (li, due 20: overdue).
Not done in the day and not open at its end: E (done before), I (created after), J (cancelled at 7),
K (expired at 23), L (cancelled before cancelling kept an end time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Forbidden
from ecomflow.engine.instances.lifecycle import cancel_instance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.reports.kpi import GroupBy, KpiReport, KpiRow, Percentiles, compute_kpis, kpis_for, percentile
from tests.factories import add_task_row, make_instance, make_task

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = 3600.0
LI = Principal(name="li", roles=frozenset({"customer_service"}))
MANAGER = Principal(name="boss", roles=frozenset({"operations"}))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def hours(p50: float | None, p90: float | None) -> Percentiles:
    return Percentiles(p50=None if p50 is None else p50 * HOUR, p90=None if p90 is None else p90 * HOUR)


def in_hours(values: Percentiles) -> tuple[float | None, float | None]:
    return tuple(None if v is None else v / HOUR for v in (values.p50, values.p90))


NOTHING = hours(None, None)


@pytest.fixture
def history(clean_db: str) -> None:
    instance_id = make_instance()
    done = {"instance_id": instance_id, "state": "completed"}
    # A: claimed at 1, done at 4, due 5.
    add_task_row(
        **done,
        created_at=at(0),
        events=(("task.claimed", at(1)),),
        completed_at=at(4),
        completed_by="wu",
        assignee="wu",
        due_at=at(5),
    )
    # B: claimed by zhao at 2, released at 3, assigned to wu at 5, done at 8, due 6, redone after a reject.
    add_task_row(
        **done,
        created_at=at(0),
        events=(("task.claimed", at(2)), ("task.released", at(3)), ("task.assigned", at(5))),
        completed_at=at(8),
        completed_by="wu",
        assignee="wu",
        due_at=at(6),
        round=2,
    )
    # C: claimed at 3, done at 4, no due time.
    add_task_row(
        **done,
        role="customer_service",
        created_at=at(2),
        events=(("task.claimed", at(3)),),
        completed_at=at(4),
        completed_by="li",
        assignee="li",
    )
    # D: claimed by li at 2, delegated to wu at 3, done at 10, due 12, third round.
    add_task_row(
        **done,
        role="customer_service",
        process="page_design",
        created_at=at(1),
        events=(("task.claimed", at(2)), ("task.delegated", at(3))),
        completed_at=at(10),
        completed_by="wu",
        assignee="wu",
        due_at=at(12),
        round=3,
    )
    # M: history from before claim events: only claimed_at (13) tells the claim; done at 14, due 13.
    add_task_row(
        **done,
        role="customer_service",
        created_at=at(12),
        claimed_at=at(13),
        completed_at=at(14),
        completed_by="li",
        assignee="li",
        due_at=at(13),
    )
    # E: done the day before.
    add_task_row(
        **done,
        created_at=at(-10),
        events=(("task.claimed", at(-9)),),
        completed_at=at(-1),
        completed_by="wu",
        assignee="wu",
    )
    # F: claimed at 21 by zhao, done only at 30 (after the day), due 22.
    add_task_row(
        **done,
        created_at=at(20),
        events=(("task.claimed", at(21)),),
        completed_at=at(30),
        completed_by="zhao",
        assignee="zhao",
        due_at=at(22),
    )
    # G: open and unclaimed, due 30.
    add_task_row(instance_id=instance_id, created_at=at(10), due_at=at(30))
    # H: claimed by li at 6, still open, due 20.
    add_task_row(
        instance_id=instance_id,
        role="customer_service",
        process="page_design",
        state="claimed",
        assignee="li",
        created_at=at(5),
        events=(("task.claimed", at(6)),),
        due_at=at(20),
    )
    # I: created after the day.
    add_task_row(instance_id=instance_id, created_at=at(25), due_at=at(26))
    # J: cancelled at 7; K: expired at 23; L: cancelled with no end time kept.
    add_task_row(instance_id=instance_id, state="cancelled", created_at=at(3), completed_at=at(7))
    add_task_row(instance_id=instance_id, state="expired", created_at=at(1), completed_at=at(23))
    add_task_row(instance_id=instance_id, state="cancelled", created_at=at(2))


AFTER_THE_DAY = at(48)


def kpis(group_by: GroupBy, *, now: datetime = AFTER_THE_DAY, person: str | None = None) -> KpiReport:
    with session_scope() as session:
        return compute_kpis(session, start=at(0), end=at(24), group_by=group_by, now=now, person=person)


def by_key(report: KpiReport) -> dict[str, KpiRow]:
    return {row.key: row for row in report.rows}


class TestPercentile:
    def test_linear_interpolation_between_closest_ranks(self) -> None:
        # p90 of 1..4: rank 0.9 × 3 = 2.7, so 3 + 0.7 × (4 − 3).
        assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
        # p50 of 1..4: rank 1.5, halfway between 2 and 3.
        assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)

    def test_one_value_and_none(self) -> None:
        assert percentile([7.0], 0.9) == 7.0
        assert percentile([], 0.5) is None


class TestTotal:
    def test_total_over_every_done_task(self, history: None) -> None:
        total = kpis(GroupBy.PERSON).total
        assert total.key == "total"
        assert total.done == 5
        # Cycles 2, 2, 4, 8, 9: p50 the middle one; p90 at rank 3.6 = 8 + 0.6 × (9 − 8).
        assert in_hours(total.cycle) == pytest.approx((4, 8.6))
        # Queues 1, 1, 1, 1, 2: p90 = 1 + 0.6 × (2 − 1).
        assert in_hours(total.queue) == pytest.approx((1, 1.6))
        # Claimed 0, 0, 0, 1, 3: p90 = 1 + 0.6 × (3 − 1).
        assert in_hours(total.claimed) == pytest.approx((0, 2.2))
        # Working 1, 1, 3, 3, 7: p90 = 3 + 0.6 × (7 − 3).
        assert in_hours(total.working) == pytest.approx((3, 5.4))
        # Four had a due time (A, B, D, M); A and D met it.
        assert total.on_time_rate == 0.5
        # B and D were redone.
        assert total.rework_rate == 0.4
        # F, G and H are open at the day's end; F and H past their due time.
        assert (total.open, total.overdue) == (3, 2)

    def test_the_total_is_the_same_whatever_the_grouping(self, history: None) -> None:
        assert kpis(GroupBy.PERSON).total == kpis(GroupBy.ROLE).total == kpis(GroupBy.PROCESS).total


class TestByPerson:
    def test_done_counts_for_who_completed_and_open_for_who_holds(self, history: None) -> None:
        rows = by_key(kpis(GroupBy.PERSON))
        # Unassigned G belongs to nobody, so no row; zhao completed nothing in the day but holds F.
        assert list(rows) == ["li", "wu", "zhao"]
        assert rows["li"] == KpiRow(
            key="li",
            done=2,
            cycle=hours(2, 2),
            queue=hours(1, 1),
            claimed=hours(0, 0),
            working=hours(1, 1),
            # Only M had a due time, and missed it.
            on_time_rate=0.0,
            rework_rate=0.0,
            open=1,
            overdue=1,
        )
        wu = rows["wu"]
        assert wu.done == 3
        # Cycles 4, 8, 9: p90 at rank 1.8 = 8 + 0.8 × (9 − 8).
        assert in_hours(wu.cycle) == pytest.approx((8, 8.8))
        # Queues 1, 1, 2 → p90 1.8; claimed 0, 1, 3 → p90 2.6; working 3, 3, 7 → p90 6.2.
        assert in_hours(wu.queue) == pytest.approx((1, 1.8))
        assert in_hours(wu.claimed) == pytest.approx((1, 2.6))
        assert in_hours(wu.working) == pytest.approx((3, 6.2))
        # A and D on time, B late; B and D redone.
        assert wu.on_time_rate == pytest.approx(2 / 3)
        assert wu.rework_rate == pytest.approx(2 / 3)
        assert (wu.open, wu.overdue) == (0, 0)
        assert rows["zhao"] == KpiRow(
            key="zhao",
            done=0,
            cycle=NOTHING,
            queue=NOTHING,
            claimed=NOTHING,
            working=NOTHING,
            on_time_rate=None,
            rework_rate=None,
            open=1,
            overdue=1,
        )

    def test_one_person_gets_their_row_alone(self, history: None) -> None:
        report = kpis(GroupBy.PERSON, person="li")
        assert [row.key for row in report.rows] == ["li"]
        assert report.total.done == 2 and (report.total.open, report.total.overdue) == (1, 1)

    def test_a_person_without_any_task_gets_an_empty_row(self, history: None) -> None:
        report = kpis(GroupBy.PERSON, person="nobody")
        assert [(row.key, row.done, row.open, row.on_time_rate) for row in report.rows] == [("nobody", 0, 0, None)]


class TestByRole:
    def test_rows_per_role(self, history: None) -> None:
        rows = by_key(kpis(GroupBy.ROLE))
        assert list(rows) == ["customer_service", "warehouse"]
        service, warehouse = rows["customer_service"], rows["warehouse"]
        # C, D, M: cycles 2, 2, 9 → p90 at rank 1.8 = 2 + 0.8 × 7; D on time, M late; D redone; H open and overdue.
        assert service.done == 3
        assert in_hours(service.cycle) == pytest.approx((2, 7.6))
        assert service.on_time_rate == 0.5
        assert service.rework_rate == pytest.approx(1 / 3)
        assert (service.open, service.overdue) == (1, 1)
        # A, B: cycles 4, 8 → p50 6, p90 at rank 0.9 = 4 + 0.9 × 4; F and G open, F overdue.
        assert warehouse.done == 2
        assert in_hours(warehouse.cycle) == pytest.approx((6, 7.6))
        assert (warehouse.on_time_rate, warehouse.rework_rate) == (0.5, 0.5)
        assert (warehouse.open, warehouse.overdue) == (2, 1)


class TestByProcess:
    def test_rows_per_process(self, history: None) -> None:
        rows = by_key(kpis(GroupBy.PROCESS))
        assert list(rows) == ["page_design", "returns_exchange"]
        assert rows["page_design"] == KpiRow(
            key="page_design",
            done=1,
            cycle=hours(9, 9),
            queue=hours(1, 1),
            claimed=hours(1, 1),
            working=hours(7, 7),
            on_time_rate=1.0,
            rework_rate=1.0,
            open=1,
            overdue=1,
        )
        returns = rows["returns_exchange"]
        # A, B, C, M: cycles 2, 2, 4, 8 → p50 at rank 1.5 = 3, p90 at rank 2.7 = 4 + 0.7 × 4.
        assert returns.done == 4
        assert in_hours(returns.cycle) == pytest.approx((3, 6.8))
        # A on time, B and M late; B redone.
        assert returns.on_time_rate == pytest.approx(1 / 3)
        assert returns.rework_rate == 0.25
        assert (returns.open, returns.overdue) == (2, 1)


class TestOpenAsOf:
    def test_open_is_counted_at_now_when_the_range_ends_later(self, history: None) -> None:
        report = kpis(GroupBy.ROLE, now=at(12))
        assert report.as_of == at(12)
        # At 12: G (created 10), H (created 5) and K (expires only at 23) are open; none is past due yet.
        assert (report.total.open, report.total.overdue) == (3, 0)

    def test_cancelling_an_instance_ends_its_tasks(self, clean_db: str) -> None:
        instance_id = make_instance()
        task_id = make_task(step="inspect", instance_id=instance_id)
        with session_scope() as session:
            cancel_instance(session, instance_id=instance_id, principal=MANAGER, reason="customer withdrew")
        with session_scope() as session:
            ended = session.scalar(select(HumanTask.completed_at).where(HumanTask.id == task_id))
        assert ended is not None
        later = utcnow() + timedelta(seconds=1)
        with session_scope() as session:
            report = compute_kpis(session, start=later - timedelta(days=1), end=later, group_by=GroupBy.ROLE, now=later)
        assert (report.total.open, report.total.done) == (0, 0)


class TestWhoMaySee:
    def test_managers_see_every_group(self, history: None) -> None:
        with session_scope() as session:
            report = kpis_for(session, principal=MANAGER, start=at(0), end=at(24), group_by=GroupBy.ROLE, now=at(48))
        assert [row.key for row in report.rows] == ["customer_service", "warehouse"]

    def test_others_get_their_own_person_row(self, history: None) -> None:
        with session_scope() as session:
            report = kpis_for(session, principal=LI, start=at(0), end=at(24), group_by=GroupBy.PERSON, now=at(48))
        assert [row.key for row in report.rows] == ["li"]
        assert report.total.done == 2

    @pytest.mark.parametrize("group_by", [GroupBy.ROLE, GroupBy.PROCESS])
    def test_others_may_not_group_by_role_or_process(self, history: None, group_by: GroupBy) -> None:
        with session_scope() as session, pytest.raises(Forbidden) as refused:
            kpis_for(session, principal=LI, start=at(0), end=at(24), group_by=group_by, now=at(48))
        assert "only managers" in refused.value.detail
