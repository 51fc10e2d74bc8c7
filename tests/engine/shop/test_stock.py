"""The stock ledger: movements once per business key, never negative, balances equal to the summed movements."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, StockMovement
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import NotFound, StockShort, ValidationFailed
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import (
    ONLINE_WAREHOUSE,
    balance,
    derived_balance,
    move,
    movements_of,
    reserve_order,
    settle_order,
    stock_of,
)

pytestmark = pytest.mark.usefixtures("clean_db")


def seed(sku: str = "TEE-M", stock: int = 10, location: str = ONLINE_WAREHOUSE) -> None:
    with session_scope() as session:
        seed_sku(session, sku=sku, title="纯棉T恤", list_price=Decimal(199), stock=stock, location=location)


def do(kind: str, quantity: int, key: str, sku: str = "TEE-M", **extra: object) -> bool:
    with session_scope() as session:
        return move(
            session,
            kind=kind,
            sku=sku,
            location=ONLINE_WAREHOUSE,
            quantity=quantity,
            business_key=key,
            actor="tester",
            **extra,  # type: ignore[arg-type]
        ).made


def figures(sku: str = "TEE-M") -> dict[str, int]:
    with session_scope() as session:
        stored = balance(session, sku=sku, location=ONLINE_WAREHOUSE)
        assert stored == derived_balance(session, sku=sku, location=ONLINE_WAREHOUSE)
        return stored


class TestMovements:
    def test_each_kind_moves_on_hand_and_reserved_its_way(self) -> None:
        seed(stock=10)
        do("reserve", 3, "o1")
        assert figures() == {"on_hand": 10, "reserved": 3, "available": 7}
        do("ship", 3, "o1")
        assert figures() == {"on_hand": 7, "reserved": 0, "available": 7}
        do("reserve", 2, "o2")
        do("release", 2, "o2")
        do("restock", 1, "rma-1")
        do("exchange_out", 2, "rma-2")
        do("reserve", 1, "o3")
        do("store_pickup", 1, "o3")
        do("adjust", -1, "count-1", reason="damaged in the warehouse")
        assert figures() == {"on_hand": 4, "reserved": 0, "available": 4}

    def test_a_replayed_business_key_never_moves_stock_twice(self) -> None:
        seed(stock=10)
        assert [do("reserve", 4, "order-9"), do("reserve", 4, "order-9"), do("reserve", 4, "order-9")] == [
            True,
            False,
            False,
        ]
        assert figures() == {"on_hand": 10, "reserved": 4, "available": 6}
        with session_scope() as session:
            kinds = session.scalars(select(AuditEvent.type).where(AuditEvent.type == "stock.reserve")).all()
            assert kinds == ["stock.reserve"]

    def test_the_same_key_may_carry_each_kind_once(self) -> None:
        seed(stock=5)
        assert (do("reserve", 2, "o"), do("ship", 2, "o"), do("ship", 2, "o")) == (True, True, False)
        assert figures() == {"on_hand": 3, "reserved": 0, "available": 3}

    def test_a_refusal_names_sku_and_location_and_moves_nothing(self) -> None:
        seed(stock=2)
        with pytest.raises(StockShort) as refused:
            do("reserve", 3, "too-many")
        assert str(refused.value) == (
            "stock of SKU TEE-M at WH-ONLINE: 3 wanted, 2 available; stock never goes negative"
        )
        with pytest.raises(StockShort, match="SKU TEE-M at WH-ONLINE"):
            do("adjust", -3, "shrink", reason="count")
        with pytest.raises(StockShort, match="SKU TEE-M at WH-ONLINE: 1 wanted, 0 available"):
            do("ship", 1, "nothing-reserved")
        assert figures() == {"on_hand": 2, "reserved": 0, "available": 2}
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(StockMovement)) == 1  # the seed

    @pytest.mark.parametrize(
        ("kind", "quantity", "reason", "field"),
        [
            ("steal", 1, None, "kind"),
            ("reserve", 0, None, "quantity"),
            ("restock", -2, None, "quantity"),
            ("adjust", 5, None, "reason"),
            ("adjust", 5, "  ", "reason"),
            ("adjust", 0, "count", "quantity"),
        ],
    )
    def test_bad_input_names_the_field(self, kind: str, quantity: int, reason: str | None, field: str) -> None:
        seed()
        with pytest.raises(ValidationFailed) as refused:
            do(kind, quantity, "k", reason=reason)
        assert [p.field for p in refused.value.problems] == [field]

    def test_unknown_sku_and_location_are_not_found(self) -> None:
        seed()
        with pytest.raises(NotFound, match="no SKU NOPE"):
            do("restock", 1, "k", sku="NOPE")
        with session_scope() as session, pytest.raises(NotFound, match="no stock location ST-X"):
            move(session, kind="restock", sku="TEE-M", location="ST-X", quantity=1, business_key="k", actor="t")


class TestOrders:
    def test_an_order_reserves_all_lines_or_none(self) -> None:
        seed("A", 5)
        seed("B", 1)
        with session_scope() as session:
            result = reserve_order(
                session, key="ord-1", instance_id=None, lines=[("A", 2), ("B", 2)], location=ONLINE_WAREHOUSE, actor="t"
            )
        assert result["reserved"] is False
        assert result["short"] == [{"sku": "B", "location": ONLINE_WAREHOUSE, "wanted": 2, "available": 1}]
        assert figures("A")["reserved"] == 0

    def test_an_order_reserves_once_and_settles_once(self) -> None:
        seed("A", 5)
        for _ in range(2):
            with session_scope() as session:
                result = reserve_order(
                    session,
                    key="ord-2",
                    instance_id=None,
                    lines=[("A", 1), ("A", 1)],
                    location=ONLINE_WAREHOUSE,
                    actor="t",
                )
            assert result["lines"] == [{"sku": "A", "quantity": 2}]
        with session_scope() as session:
            shipped = settle_order(session, key="ord-2", kind="ship", actor="t", instance_id=None)
            again = settle_order(session, key="ord-2", kind="ship", actor="t", instance_id=None)
            released = settle_order(session, key="ord-2", kind="release", actor="t", instance_id=None)
        assert (shipped, again, released) == ([{"sku": "A", "location": ONLINE_WAREHOUSE, "quantity": 2}], [], [])
        assert figures("A") == {"on_hand": 3, "reserved": 0, "available": 3}


class TestReads:
    def test_stock_per_location_and_movements_paged(self) -> None:
        seed(stock=6)
        seed(stock=2, location="ST-SH01")
        do("reserve", 1, "o1")
        with session_scope() as session:
            rows = stock_of(session, "TEE-M")
            first = movements_of(session, "TEE-M", limit=2)
            rest = movements_of(session, "TEE-M", after=first[-1].id)
        assert [(r["location"], r["on_hand"], r["available"]) for r in rows] == [
            ("ST-SH01", 2, 2),
            (ONLINE_WAREHOUSE, 6, 5),
        ]
        assert [m.kind for m in first + rest] == ["adjust", "adjust", "reserve"]


class TestConcurrency:
    """On PostgreSQL the guarded UPDATE's row lock serialises the buyers; SQLite takes its write lock first."""

    def test_many_threads_reserving_one_sku_never_oversell(self) -> None:
        seed(stock=25)
        outcomes: list[str] = []
        start = threading.Barrier(20)

        def buyer(number: int) -> None:
            start.wait()
            for attempt in range(3):
                try:
                    do("reserve", 1, f"buyer-{number}-{attempt}")
                    outcomes.append("reserved")
                except StockShort:
                    outcomes.append("short")

        threads = [threading.Thread(target=buyer, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (outcomes.count("reserved"), outcomes.count("short")) == (25, 35)
        assert figures() == {"on_hand": 25, "reserved": 25, "available": 0}

    def test_concurrent_replays_of_one_key_move_once(self) -> None:
        seed(stock=10)
        made: list[bool] = []
        start = threading.Barrier(12)

        def replay() -> None:
            start.wait()
            made.append(do("reserve", 3, "the-same-order"))

        threads = [threading.Thread(target=replay) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(made) == [False] * 11 + [True]
        assert figures() == {"on_hand": 10, "reserved": 3, "available": 7}
