"""The ledger for many orders at once: once per key, never negative, audited, balances equal to the movements."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, StockMovement
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import StockShort
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance, derived_balance, settle_order
from ecomflow.engine.shop.stock_batches import Line, move_many, reservations_of, reserve_orders, settle_many

pytestmark = pytest.mark.usefixtures("clean_db")
TEE, CAP = "BT-TEE", "BT-CAP"


def seed(tee: int = 10, cap: int = 10) -> None:
    with session_scope() as session:
        seed_sku(session, sku=TEE, title="T恤", list_price=Decimal(99), stock=tee)
        seed_sku(session, sku=CAP, title="帽", list_price=Decimal(49), stock=cap)


def figures(sku: str) -> dict[str, int]:
    with session_scope() as session:
        stored = balance(session, sku=sku, location=ONLINE_WAREHOUSE)
        assert stored == derived_balance(session, sku=sku, location=ONLINE_WAREHOUSE)
        return stored


def reserve(orders: list[tuple[str, list[tuple[str, int]]]], instance_id: str = "i-1") -> dict:
    with session_scope() as session:
        return reserve_orders(session, orders=orders, location=ONLINE_WAREHOUSE, actor="t", instance_id=instance_id)


def count(model: type, *where: object) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


class TestReserveOrders:
    def test_orders_reserve_in_turn_all_lines_or_none_and_the_short_one_names_what_was_left(self) -> None:
        seed(tee=3, cap=10)
        result = reserve([("o1", [(TEE, 2), (CAP, 1)]), ("o2", [(TEE, 2), (CAP, 1)]), ("o3", [(TEE, 1)])])
        assert [result[k]["reserved"] for k in ("o1", "o2", "o3")] == [True, False, True]
        assert result["o2"]["short"] == [{"sku": TEE, "location": ONLINE_WAREHOUSE, "wanted": 2, "available": 1}]
        assert figures(TEE) == {"on_hand": 3, "reserved": 3, "available": 0}
        assert figures(CAP)["reserved"] == 1
        assert count(AuditEvent, AuditEvent.type == "stock.reserve") == 3

    def test_a_replay_finds_the_reservations_and_makes_nothing_again(self) -> None:
        seed()
        orders = [("o1", [(TEE, 2)]), ("o2", [(CAP, 1), (TEE, 1)])]
        reserve(orders)
        again = reserve(orders)
        assert again["o2"] == {
            "reserved": True,
            "location": ONLINE_WAREHOUSE,
            "lines": [{"sku": CAP, "quantity": 1}, {"sku": TEE, "quantity": 1}],
            "short": [],
        }
        assert figures(TEE)["reserved"] == 3 and count(StockMovement, StockMovement.kind == "reserve") == 3

    def test_an_unknown_sku_is_short_with_nothing_available(self) -> None:
        seed()
        result = reserve([("o1", [("NO-SUCH", 1)])])
        assert result["o1"]["short"][0]["available"] == 0 and figures(TEE)["reserved"] == 0


class TestSettleAndMove:
    def test_shipping_a_waves_reservations_books_each_line_out_once(self) -> None:
        seed(tee=5, cap=5)
        reserve([("o1", [(TEE, 2)]), ("o2", [(TEE, 1), (CAP, 1)])])
        with session_scope() as session:
            held = reservations_of(session, instance_id="i-1", keys=["o1", "o2"])
            settle_order(session, key="o1", kind="release", actor="t", instance_id=None)  # o1 left meanwhile
            made = settle_many(
                session, reservations=[m for ms in held.values() for m in ms], kind="ship", actor="t", instance_id="i"
            )
            assert sorted(line.business_key for line in made) == [f"o2:{CAP}", f"o2:{TEE}"]
        with session_scope() as session:
            held = reservations_of(session, instance_id="i-1", keys=["o1", "o2"])
            again = settle_many(
                session, reservations=[m for ms in held.values() for m in ms], kind="ship", actor="t", instance_id="i"
            )
        assert again == []
        assert figures(TEE) == {"on_hand": 4, "reserved": 0, "available": 4}
        assert figures(CAP) == {"on_hand": 4, "reserved": 0, "available": 4}

    def test_a_batch_that_would_go_below_zero_keeps_nothing(self) -> None:
        seed(tee=2, cap=5)
        lines = [
            Line(sku=CAP, location=ONLINE_WAREHOUSE, quantity=1, business_key="x1"),
            Line(sku=TEE, location=ONLINE_WAREHOUSE, quantity=3, business_key="x2"),
        ]
        with pytest.raises(StockShort) as short, session_scope() as session:
            move_many(session, kind="reserve", lines=lines, actor="t", instance_id=None)
        assert (short.value.sku, short.value.wanted, short.value.available) == (TEE, 3, 2)
        assert figures(CAP)["reserved"] == 0 and count(StockMovement, StockMovement.kind == "reserve") == 0
