"""The stock a return or an exchange moves: once per case, whatever replays it."""

from __future__ import annotations

from sqlalchemy import func, select

from ecomflow.engine.db.models import StockMovement
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance
from ecomflow.flows.returns_exchange import move_case_stock

INSTANCE = "11111111-2222-3333-4444-555555555555"


def _seed(stock: int) -> None:
    with session_scope() as session:
        seed_sku(session, sku="TEE-WHT-M", title="纯棉圆领T恤 白色 M", list_price="199", stock=stock)


def _on_hand_and_moves(kind: str) -> tuple[int, int]:
    with session_scope() as session:
        on_hand = balance(session, sku="TEE-WHT-M", location=ONLINE_WAREHOUSE)["on_hand"]
        moves = session.scalar(select(func.count()).select_from(StockMovement).where(StockMovement.kind == kind))
    return on_hand, moves


class TestMoveCaseStock:
    def test_a_replayed_restock_moves_the_stock_once(self, clean_db: str) -> None:
        _seed(stock=3)
        first = move_case_stock.fn(INSTANCE, "restock", "TEE-WHT-M", 2)
        again = move_case_stock.fn(INSTANCE, "restock", "TEE-WHT-M", 2)
        assert first["moved"] and again["movement_id"] == first["movement_id"]
        assert _on_hand_and_moves("restock") == (5, 1)

    def test_an_exchange_takes_the_replacement_out_once(self, clean_db: str) -> None:
        _seed(stock=3)
        for _ in range(2):
            move_case_stock.fn(INSTANCE, "exchange_out", "TEE-WHT-M", 1)
        assert _on_hand_and_moves("exchange_out") == (2, 1)

    def test_a_replacement_the_ledger_lacks_is_reported_not_moved(self, clean_db: str) -> None:
        _seed(stock=0)
        result = move_case_stock.fn(INSTANCE, "exchange_out", "TEE-WHT-M", 1)
        assert result["moved"] is False and "TEE-WHT-M" in result["problem"] and ONLINE_WAREHOUSE in result["problem"]
        assert _on_hand_and_moves("exchange_out") == (0, 0)

    def test_a_sku_the_catalogue_lacks_is_reported_not_moved(self, clean_db: str) -> None:
        result = move_case_stock.fn(INSTANCE, "restock", "NO-SUCH-SKU", 1)
        assert result == {
            "moved": False,
            "kind": "restock",
            "sku": "NO-SUCH-SKU",
            "problem": "SKU NO-SUCH-SKU is not in the catalogue",
        }
