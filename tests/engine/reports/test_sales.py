"""Sales facts against hand computations, exactly in Decimal: by day, product, channel and store."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.reports.sales import SalesBy, SalesReport, SalesRow, sales_report
from tests.engine.reports.order_set import Line, Order, Refund, by_hand, generate, insert, shanghai

ZONE = "Asia/Shanghai"
D1, D2, D3 = date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)


def report(first: date, last: date, by: SalesBy) -> SalesReport:
    with session_scope() as session:
        return sales_report(session, first=first, last=last, timezone=ZONE, by=by)


def row(result: SalesReport, key: str | None) -> SalesRow:
    return next(r for r in result.rows if r.key == key)


def order(no: str, paid_at: str | None, amount: str, **overrides: object) -> Order:
    values: dict[str, object] = {
        "platform": "taobao",
        "order_no": no,
        "shop": "旗舰店",
        "buyer": f"buyer-{no}",
        "status": "completed",
        "paid_amount": Decimal(amount),
        "paid_at": None if paid_at is None else shanghai(paid_at),
        "lines": [Line(sku="TEA-100", price=Decimal(amount), quantity=1)],
    }
    values.update(overrides)
    return Order(**values)  # type: ignore[arg-type]


@pytest.fixture
def edge_cases(clean_db: str) -> list[Order]:
    orders = [
        # The last second of 10 November and the first of 11 November, Shanghai time (15:59:59 / 16:00:00 UTC).
        order("late", "2026-11-10T23:59:59", "100.00", buyer="amy"),
        order("early", "2026-11-11T00:00:00", "200.00", buyer="amy"),
        # Cancelled before it shipped: never counted, nor its buyer.
        order("gone", "2026-11-10T12:00:00", "999.00", status="cancelled", buyer="cat"),
        # Paid, then closed by a full refund on the next day: in 10 November's GMV, refund on the 11th.
        order(
            "closed",
            "2026-11-10T09:00:00",
            "50.00",
            status="cancelled",
            buyer="dan",
            refunds=[Refund("r-closed", Decimal("50.00"), "refunded", shanghai("2026-11-11T10:00:00"), "TEA-100")],
        ),
        # Partial refund the same day, and a refused one that counts nothing.
        order(
            "partial",
            "2026-11-10T10:00:00",
            "80.00",
            platform="jd",
            shop="专营店",
            buyer="eve",
            refunds=[
                Refund("r-part", Decimal("19.99"), "refunded", shanghai("2026-11-10T20:00:00"), "TEA-100"),
                Refund("r-no", Decimal("80.00"), "rejected", shanghai("2026-11-10T21:00:00"), "TEA-100"),
            ],
        ),
        # Not paid yet.
        order("unpaid", None, "70.00", status="awaiting_payment"),
    ]
    insert(orders)
    return orders


class TestEdgeCases:
    def test_the_shanghai_day_boundary_splits_2359_59_from_0000_00(self, edge_cases: list[Order]) -> None:
        result = report(D1, D2, SalesBy.DAY)
        day1, day2 = row(result, "2026-11-10"), row(result, "2026-11-11")
        # 10 Nov: late 100 + closed 50 + partial 80; the cancelled 999 is left out.
        assert (day1.gmv, day1.paid_orders, day1.buyers) == (Decimal("230.00"), 3, 3)
        assert (day2.gmv, day2.paid_orders, day2.buyers) == (Decimal("200.00"), 1, 1)

    def test_refunds_fall_on_the_day_they_completed(self, edge_cases: list[Order]) -> None:
        result = report(D1, D2, SalesBy.DAY)
        assert row(result, "2026-11-10").refund_amount == Decimal("19.99")
        assert row(result, "2026-11-11").refund_amount == Decimal("50.00")
        # 50 / 200 on the 11th: the refunded order was paid the day before.
        assert row(result, "2026-11-11").refund_rate == Decimal("0.2500")
        assert row(result, "2026-11-10").refund_rate == Decimal("0.0869")  # 19.99 / 230 = 0.086913…

    def test_total_counts_distinct_buyers_and_rounds_aov_half_up(self, edge_cases: list[Order]) -> None:
        total = report(D1, D2, SalesBy.DAY).total
        assert (total.gmv, total.paid_orders, total.buyers) == (Decimal("430.00"), 4, 3)
        assert total.aov == Decimal("107.50")
        assert (total.refund_amount, total.refunds) == (Decimal("69.99"), 2)
        assert total.refund_rate == Decimal("0.1628")  # 69.99 / 430 = 0.16276…

    def test_the_grouping_may_be_named_by_its_word(self, edge_cases: list[Order]) -> None:
        assert report(D1, D2, "day") == report(D1, D2, SalesBy.DAY)  # type: ignore[arg-type]

    def test_a_day_without_sales_has_a_row_of_zeros(self, edge_cases: list[Order]) -> None:
        empty = row(report(D1, D3, SalesBy.DAY), "2026-11-12")
        assert (empty.gmv, empty.paid_orders, empty.aov, empty.refund_rate) == (Decimal("0.00"), 0, None, None)

    def test_channel_and_store_split_the_same_figures(self, edge_cases: list[Order]) -> None:
        channel = report(D1, D2, SalesBy.CHANNEL)
        assert [(r.key, r.gmv) for r in channel.rows] == [("jd", Decimal("80.00")), ("taobao", Decimal("350.00"))]
        store = report(D1, D2, SalesBy.STORE)
        assert row(store, "专营店").refund_amount == Decimal("19.99")
        assert row(store, "旗舰店").refund_amount == Decimal("50.00")


class TestProductShares:
    def test_paid_amount_is_shared_by_line_value_half_up(self, clean_db: str) -> None:
        # Lines worth 10 and 20 of a 100.01 order: shares 33.336… → 33.34 and 66.673… → 66.67.
        lines = [Line("TEA-100", Decimal("10.00"), 1), Line("CUP-S", Decimal("10.00"), 2)]
        insert(
            [
                order("mix", "2026-11-10T08:00:00", "100.01", lines=lines),
                order("bare", "2026-11-10T09:00", "5", lines=[]),
            ]
        )
        result = report(D1, D1, SalesBy.PRODUCT)
        assert [(r.key, r.gmv, r.paid_orders) for r in result.rows] == [
            ("P-CUP", Decimal("66.67"), 1),
            ("P-TEA", Decimal("33.34"), 1),
            (None, Decimal("5.00"), 1),
        ]
        assert row(result, "P-TEA").label == "P-TEA 标题"


@pytest.mark.parametrize("by", list(SalesBy))
def test_a_generated_order_set_matches_the_hand_computation(clean_db: str, by: SalesBy) -> None:
    orders = generate(18, first=D1, days=4, orders=300)
    insert(orders)
    # Generated days run 10–13 November; report the middle two, so orders and refunds fall outside too.
    first, last = D2, D3
    result = report(first, last, by)
    hand = by_hand(orders, first=first, last=last, by=by.value)
    got = {
        r.key: (r.gmv, r.paid_orders, r.buyers, r.refund_amount, r.refunds)
        for r in result.rows
        if r.paid_orders or r.refunds
    }
    expected = {k: (h.gmv, len(h.orders), len(h.buyers), h.refund_amount, h.refunds) for k, h in hand.items()}
    assert got == expected
    assert sum(expected[k][0] for k in expected) > Decimal("10000")  # the set is not trivially small
    total = by_hand(orders, first=first, last=last, by="total")["total"]
    assert (result.total.gmv, result.total.paid_orders, result.total.buyers, result.total.refund_amount) == (
        total.gmv,
        len(total.orders),
        len(total.buyers),
        total.refund_amount,
    )


def test_a_range_ending_before_it_starts_is_refused(clean_db: str) -> None:
    with pytest.raises(ValueError, match="comes before"):
        report(D2, D1, SalesBy.DAY)
