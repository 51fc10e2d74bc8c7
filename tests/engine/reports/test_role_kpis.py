"""KPIs per role from the data: inquiry conversion and first response, dispatch within the promise."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ecomflow.engine.db.models import HumanTask, VariantListing
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.reports.role_kpis import customer_service_kpis, warehouse_kpis
from tests.engine.reports.order_set import Line, Order, insert, shanghai
from tests.factories import make_instance

DAY_START, DAY_END = shanghai("2026-11-11T00:00:00"), shanghai("2026-11-12T00:00:00")


def answer(instance_id: str, *, round: int, created: str, minutes: int, outcome: str) -> None:
    with session_scope() as session:
        session.add(
            HumanTask(
                instance_id=instance_id,
                process_key="presales_order",
                step_key="answer_inquiry",
                kind="human",
                role="customer_service",
                round=round,
                state="completed",
                output={"outcome": outcome},
                created_at=shanghai(created),
                completed_at=shanghai(created) + timedelta(minutes=minutes),
                completed_by="lin",
            )
        )


class TestCustomerService:
    def test_conversion_counts_each_cases_last_answer_and_response_times_every_answer(self, clean_db: str) -> None:
        ordered, lost, second_try = (
            make_instance(process="presales_order", params={"customer": "tb_amy", "question": "有货吗"})
            for _ in range(3)
        )
        answer(ordered, round=1, created="2026-11-11T10:00:00", minutes=30, outcome="ordered")
        answer(lost, round=1, created="2026-11-11T10:00:00", minutes=60, outcome="no_order")
        answer(second_try, round=1, created="2026-11-11T11:00:00", minutes=10, outcome="no_order")
        answer(second_try, round=2, created="2026-11-11T12:00:00", minutes=20, outcome="ordered")
        answer(lost, round=2, created="2026-11-12T09:00:00", minutes=5, outcome="ordered")  # the next day
        with session_scope() as session:
            kpis = customer_service_kpis(session, start=DAY_START, end=DAY_END)
        assert (kpis.inquiries, kpis.ordered, kpis.conversion) == (3, 2, Decimal("0.6667"))
        # 10, 20, 30 and 60 minutes: the median halfway between 20 and 30.
        assert kpis.first_response_seconds.p50 == 25 * 60


def shipped(order_no: str, at: datetime) -> None:
    with session_scope() as session:
        order_id = session.query(PlatformOrder.id).filter(PlatformOrder.order_no == order_no).scalar()
        session.add(PlatformOrderEvent(order_id=order_id, at=at, type="shipped", actor="erp", data={}))


class TestWarehouse:
    def test_dispatch_within_the_listings_promise_or_48_hours(self, clean_db: str) -> None:
        paid = shanghai("2026-11-11T10:00:00")
        tea, cup = [Line("TEA-100", Decimal("10.00"), 1)], [Line("CUP-S", Decimal("10.00"), 1)]
        orders = [
            Order("taobao", no, None, no, "paid", Decimal("10.00"), at, lines)
            for no, at, lines in [
                ("fast", paid, tea),
                ("late", paid, tea),
                ("default", paid, cup),
                ("never", paid, cup),
                ("young", shanghai("2026-11-11T23:00:00"), cup),
            ]
        ]
        insert(orders)
        with session_scope() as session:
            session.add(
                VariantListing(
                    sku="TEA-100",
                    online_price=Decimal("10.00"),
                    listed_stock=5,
                    title="茶",
                    shipping_template="std",
                    dispatch_within_hours=24,
                    instance_id="listing",
                )
            )
        shipped("fast", paid + timedelta(hours=20))
        shipped("late", paid + timedelta(hours=30))  # TEA-100 promises 24 h
        shipped("default", paid + timedelta(hours=40))  # no listing: 48 h
        with session_scope() as session:
            kpis = warehouse_kpis(session, start=DAY_START, end=DAY_END, as_of=shanghai("2026-11-13T14:00:00"))
        # "never" ran out of its 48 h; "young" (paid 23:00) still has until the 13th, 23:00.
        assert (kpis.due, kpis.within_promise, kpis.not_shipped, kpis.dispatch_rate) == (4, 2, 1, Decimal("0.5000"))
