"""An order placed after an inquiry joins the waves and keeps the inquiry's reservation: the goods are held once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.platform_models import PlatformOrder
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import inquiry_orders
from ecomflow.engine.intake.fulfilment import advance, apply_scans, review_wave, ship_wave
from ecomflow.engine.intake.inquiry_orders import join_from_inquiry
from ecomflow.engine.intake.waves import IN_WAVE, PICKED, inquiry_reservation_key
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance, reserve_order
from ecomflow.engine.sla.sweeper import sweep_once
from tests.conftest import BACKEND
from tests.platform_orders import TEE, add_order, order_row, seed_stock, set_status, waves

pytestmark = pytest.mark.usefixtures("clean_db")


def _inquiry_reserves(quantity: int) -> str:
    """Reserve as presales_order's stock_check does; return the inquiry's instance id."""
    inquiry = str(uuid.uuid4())
    with session_scope() as session:
        key = inquiry_reservation_key(inquiry, partial=False)
        reserved = reserve_order(
            session, key=key, instance_id=None, lines=[(TEE, quantity)], location=ONLINE_WAREHOUSE, actor="t"
        )
        assert reserved["reserved"]
    return inquiry


def _join(inquiry: str, order_no: str, quantity: int) -> int | None:
    with session_scope() as session:
        order = join_from_inquiry(
            session,
            instance_id=inquiry,
            platform="tmall",
            order_no=order_no,
            customer="小王",
            lines=[{"sku": TEE, "quantity": quantity}],
            actor="system",
        )
        return order.wave_id


def _tee() -> dict[str, int]:
    with session_scope() as session:
        return balance(session, sku=TEE, location=ONLINE_WAREHOUSE)


def _work_wave() -> dict:
    sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
    wave = next(w for w in waves() if w["state"] == "closed")
    with session_scope() as session:
        review = review_wave(session, wave["id"], instance_id=wave["instance_id"])
        advance(session, wave["id"], source=IN_WAVE, target=PICKED, event="picked", by="wh")
        apply_scans(session, wave["id"], {"all_ok": True}, by="wh", source=PICKED)
    return {**wave, "review": review}


def test_an_inquiry_order_joins_a_wave_and_ships_on_the_inquiry_reservation() -> None:
    seed_stock(tee=10)
    inquiry = _inquiry_reserves(3)
    wave_id = _join(inquiry, "TB-INQ-1", 3)
    assert wave_id is not None and order_row("TB-INQ-1")["fulfilment_state"] == IN_WAVE
    wave = _work_wave()
    assert wave["review"]["passed"] == ["TB-INQ-1"]
    assert _tee() == {"on_hand": 10, "reserved": 3, "available": 7}  # not reserved a second time
    with session_scope() as session:
        rows = [{"order_no": "TB-INQ-1", "carrier": "顺丰", "tracking_no": "SF1"}]
        shipped = ship_wave(session, wave["id"], rows, by="wh", instance_id=wave["instance_id"])
    assert shipped["shipped"][0]["stock_moved"] == [{"sku": TEE, "location": ONLINE_WAREHOUSE, "quantity": 3}]
    assert _tee() == {"on_hand": 7, "reserved": 0, "available": 7}


def test_joining_again_on_a_replay_makes_one_order() -> None:
    seed_stock()
    inquiry = _inquiry_reserves(1)
    assert _join(inquiry, "TB-INQ-2", 1) == _join(inquiry, "TB-INQ-2", 1)
    with session_scope() as session:
        assert len(list(session.scalars(select(PlatformOrder)))) == 1
    assert order_row("TB-INQ-2")["history"] == ["joined_wave"]


def test_an_order_the_import_brought_first_keeps_its_own_reservation_and_the_inquiry_lets_go() -> None:
    seed_stock(tee=10)
    add_order("TB-INQ-3", lines=[(TEE, 2)])
    _work_wave()
    assert _tee()["reserved"] == 2
    inquiry = _inquiry_reserves(2)
    assert _tee()["reserved"] == 4
    _join(inquiry, "TB-INQ-3", 2)
    assert _tee()["reserved"] == 2


def test_a_cancelled_inquiry_order_releases_the_inquiry_reservation() -> None:
    seed_stock(tee=10)
    inquiry = _inquiry_reserves(4)
    _join(inquiry, "TB-INQ-4", 4)
    set_status("TB-INQ-4", "cancelled")
    assert _tee() == {"on_hand": 10, "reserved": 0, "available": 10}


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite's write lock lets one inquiry at a time read and insert")
def test_two_inquiries_recording_the_same_order_at_once_make_one_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other inquiry commits the order between this one's read and insert: this one joins it, no error."""
    seed_stock(tee=10)
    first, second = _inquiry_reserves(1), _inquiry_reserves(1)
    real_prices = inquiry_orders.priced_variants
    raced: dict[str, int | None] = {}

    def prices_after_the_other_inquiry_committed(session: Session, skus: list[str]) -> dict:
        monkeypatch.setattr(inquiry_orders, "priced_variants", real_prices)  # the other inquiry runs unhindered
        raced["wave_id"] = _join(second, "TB-INQ-RACE", 1)  # between this one's read (no order yet) and insert
        return real_prices(session, skus)

    monkeypatch.setattr(inquiry_orders, "priced_variants", prices_after_the_other_inquiry_committed)
    wave_id = _join(first, "TB-INQ-RACE", 1)
    assert wave_id is not None and wave_id == raced["wave_id"]  # the other inquiry's order's wave
    with session_scope() as session:
        orders = list(session.scalars(select(PlatformOrder)))
    assert [(o.order_no, o.inquiry_instance_id) for o in orders] == [("TB-INQ-RACE", second)]
    assert order_row("TB-INQ-RACE")["history"] == ["joined_wave"]
