"""Targets against actuals: the newest plan's months and departments beside the GMV sold."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.reports.targets_actuals import QuarterReview, parse_quarter, review_quarter
from tests.engine.reports.order_set import Line, Order, insert, shanghai
from tests.engine.reports.plans import insert_plan

ZONE = "Asia/Shanghai"
MONTHS = {"2026-10": "1000.00", "2026-11": "1000.00", "2026-12": "2000.00"}


def order(no: str, at: str, amount: str) -> Order:
    return Order(
        "taobao", no, "旗舰店", no, "completed", Decimal(amount), shanghai(at), [Line("TEA-100", Decimal(amount), 1)]
    )


def review(as_of: date) -> QuarterReview:
    with session_scope() as session:
        return review_quarter(session, quarter="2026-Q4", as_of=as_of, timezone=ZONE)


@pytest.fixture
def quarter(clean_db: str) -> str:
    insert_plan({"2026-10": "1.00"}, {})  # replaced by the newer plan
    plan_id = insert_plan(MONTHS, {"promotion": "3000.00", "visual": "1000.00"})
    insert(
        [
            order("a", "2026-10-01T00:00:00", "600.00"),  # the quarter's first second
            order("b", "2026-09-30T23:59:59", "999.00"),  # the quarter before
            order("c", "2026-11-15T12:00:00", "1100.00"),
            order("d", "2026-12-31T23:59:59", "300.00"),  # the quarter's last second
        ]
    )
    return plan_id


class TestReviewQuarter:
    def test_months_compare_the_newest_plans_targets_with_gmv(self, quarter: str) -> None:
        result = review(date(2026, 12, 31))
        assert result.plan_instance_id == quarter
        assert [(m.key, m.target, m.actual, m.gap, m.attainment) for m in result.months] == [
            ("2026-10", Decimal("1000.00"), Decimal("600.00"), Decimal("-400.00"), Decimal("0.6000")),
            ("2026-11", Decimal("1000.00"), Decimal("1100.00"), Decimal("100.00"), Decimal("1.1000")),
            ("2026-12", Decimal("2000.00"), Decimal("300.00"), Decimal("-1700.00"), Decimal("0.1500")),
        ]
        assert (result.total.target, result.total.actual) == (Decimal("4000.00"), Decimal("2000.00"))

    def test_departments_get_the_actual_by_their_target_share(self, quarter: str) -> None:
        result = review(date(2026, 12, 31))
        # 2000 sold: promotion holds 3/4 of the target, visual 1/4.
        assert [(d.key, d.actual, d.attainment) for d in result.departments] == [
            ("promotion", Decimal("1500.00"), Decimal("0.5000")),
            ("visual", Decimal("500.00"), Decimal("0.5000")),
        ]

    def test_days_after_as_of_count_nothing_yet(self, quarter: str) -> None:
        result = review(date(2026, 11, 10))
        assert [m.actual for m in result.months] == [Decimal("600.00"), Decimal("0.00"), Decimal("0.00")]

    def test_without_a_plan_targets_are_none(self, clean_db: str) -> None:
        result = review(date(2026, 12, 31))
        assert result.plan_instance_id is None and result.total.target is None and result.departments == []
        assert [m.gap for m in result.months] == [None, None, None]


@pytest.mark.parametrize(("text", "expected"), [("2026Q4", "2026-Q4"), ("2026-q1", "2026-Q1")])
def test_quarters_are_read_with_or_without_the_dash(text: str, expected: str) -> None:
    assert parse_quarter(text) == expected


def test_a_bad_quarter_is_refused() -> None:
    with pytest.raises(ValueError, match="2026-Q4 or 2026Q4"):
        parse_quarter("2026-Q5")
