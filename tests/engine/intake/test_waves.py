"""Paid orders join waves per location; a wave closes at its size or its window and starts one fulfilment."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import OutboxMessage, ProcessInstance
from ecomflow.engine.db.platform_models import ImportRun, PlatformOrder, PlatformOrderEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import DefinitionError
from ecomflow.engine.intake import waves as wave_module
from ecomflow.engine.intake.fulfilment import advance, review_wave, ship_wave
from ecomflow.engine.intake.ingest import apply
from ecomflow.engine.intake.records import OrderLineRecord, OrderRecord
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance
from ecomflow.engine.sla.sweeper import sweep_once
from tests.factories import edited_definitions
from tests.platform_orders import CAP, TEE, add_order, add_orders, order_row, seed_stock, set_status, waves

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
def max_orders_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waves of at most 3 orders, so a test fills one."""
    definitions = edited_definitions(lambda raw: raw.update(wave={"window": "30m", "max_orders": 3}))
    monkeypatch.setattr(wave_module, "get_definitions", lambda: definitions)


def _instances() -> list[ProcessInstance]:
    with session_scope() as session:
        rows = session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "order_fulfilment"))
        return [(i.business_key, dict(i.params), i.started_by) for i in rows]


class TestSettings:
    def test_the_shipped_file_batches_30_minutes_or_200_orders(self) -> None:
        settings = edited_definitions(lambda raw: None).wave
        assert (settings.window, settings.max_orders) == (timedelta(minutes=30), 200)

    @pytest.mark.parametrize(
        ("wave", "problem"),
        [
            ({"window": "half an hour"}, "wave.window: invalid duration"),
            ({"max_orders": 0}, "wave.max_orders: expected a whole number from 1 to 5000"),
            ({"max_orders": "200"}, "wave.max_orders: expected a whole number"),
            ({"size": 3}, "wave: unknown key 'size'"),
            ("30m", "wave: expected a mapping"),
        ],
    )
    def test_a_bad_wave_setting_is_refused_naming_it(self, wave: object, problem: str) -> None:
        with pytest.raises(DefinitionError) as refused:
            edited_definitions(lambda raw: raw.update(wave=wave))
        assert any(problem in p for p in refused.value.problems)


class TestJoining:
    def test_paid_orders_join_one_open_wave_of_their_location(self) -> None:
        seed_stock()
        first, second = add_order(), add_order()
        (wave,) = waves()
        assert wave["location"] == ONLINE_WAREHOUSE and wave["state"] == "open" and wave["orders"] == 2
        for order_no in (first, second):
            row = order_row(order_no)
            assert (row["wave_id"], row["fulfilment_state"], row["history"]) == (
                wave["id"],
                "in_wave",
                ["order.imported", "joined_wave"],
            )
        assert _instances() == []

    def test_an_order_not_yet_paid_joins_no_wave(self) -> None:
        seed_stock()
        order_no = add_order(status="awaiting_payment")
        assert waves() == [] and order_row(order_no)["fulfilment_state"] is None

    def test_an_order_of_another_location_gets_its_own_wave(self) -> None:
        seed_stock()
        seed_stock(location="ST-JINGAN")
        add_order()
        add_order(location="ST-JINGAN")
        assert sorted(w["location"] for w in waves()) == sorted([ONLINE_WAREHOUSE, "ST-JINGAN"])

    def test_an_order_naming_an_unknown_location_ships_from_the_online_warehouse(self) -> None:
        seed_stock()
        add_order(location="NO-SUCH-PLACE")
        assert [w["location"] for w in waves()] == [ONLINE_WAREHOUSE]


class TestClosing:
    def test_the_wave_closes_at_max_orders_and_starts_its_fulfilment_once(self, max_orders_3: None) -> None:
        seed_stock()
        for _ in range(4):
            add_order()
        full, fresh = waves()
        assert (full["state"], full["orders"], fresh["state"], fresh["orders"]) == ("closed", 3, "open", 1)
        assert _instances() == [(f"wave-{full['id']}", {"wave_id": full["id"]}, "system")]
        with session_scope() as session:
            started = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.instance_id == full["instance_id"])
            )
        assert started == 1

    def test_one_import_batch_fills_waves_in_turn(self, max_orders_3: None) -> None:
        seed_stock()
        numbers = add_orders(7)
        first, second, third = waves()
        assert [(w["state"], w["orders"]) for w in (first, second, third)] == [
            ("closed", 3),
            ("closed", 3),
            ("open", 1),
        ]
        assert [order_row(n)["wave_id"] for n in numbers] == [first["id"]] * 3 + [second["id"]] * 3 + [third["id"]]
        assert all(order_row(n)["history"] == ["order.imported", "joined_wave"] for n in numbers)
        assert sorted(_instances()) == sorted(
            [(f"wave-{w['id']}", {"wave_id": w["id"]}, "system") for w in (first, second)]
        )

    def test_a_wave_left_full_by_a_lowered_limit_closes_when_the_next_order_comes(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seed_stock()
        add_orders(3)
        definitions = edited_definitions(lambda raw: raw.update(wave={"window": "30m", "max_orders": 2}))
        monkeypatch.setattr(wave_module, "get_definitions", lambda: definitions)
        add_orders(1)
        old, new = waves()
        assert [(old["state"], old["orders"]), (new["state"], new["orders"])] == [("closed", 3), ("open", 1)]

    def test_the_sweeper_closes_a_wave_whose_window_passed(self) -> None:
        seed_stock()
        add_order()
        assert sweep_once(now=utcnow() + timedelta(minutes=29), forecast=False).waves_closed == 0
        result = sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
        (wave,) = waves()
        assert result.waves_closed == 1 and wave["state"] == "closed" and wave["instance_id"] is not None
        again = sweep_once(now=utcnow() + timedelta(minutes=40), forecast=False)
        assert again.waves_closed == 0 and len(_instances()) == 1

    def test_an_order_after_the_close_opens_the_next_wave(self) -> None:
        seed_stock()
        add_order()
        sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
        later = add_order()
        _, opened = waves()
        assert order_row(later)["wave_id"] == opened["id"] and opened["state"] == "open"


class TestConcurrency:
    def test_concurrent_imports_never_overfill_a_wave_nor_start_it_twice(self, max_orders_3: None) -> None:
        seed_stock(tee=1000, cap=1000)
        errors: list[BaseException] = []

        def import_orders() -> None:
            try:
                for _ in range(5):
                    add_order()
            except BaseException as exc:  # reported below: a thread's failure must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=import_orders) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        made = waves()
        assert sum(w["orders"] for w in made) == 30
        assert all(w["orders"] <= 3 for w in made)
        closed = [w for w in made if w["state"] == "closed"]
        assert len(made) == len(closed) == 10 and all(w["orders"] == 3 for w in closed)
        assert sorted(key for key, _, _ in _instances()) == sorted(f"wave-{w['id']}" for w in closed)


class TestCancellation:
    def test_an_order_cancelled_on_the_platform_leaves_its_wave(self) -> None:
        seed_stock()
        order_no = add_order()
        set_status(order_no, "cancelled")
        row = order_row(order_no)
        assert row["fulfilment_state"] == "cancelled" and row["history"] == [
            *("order.imported", "joined_wave", "order.status_changed", "cancelled", "left_wave")
        ]

    def test_a_cancelled_order_gets_its_reservation_back(self) -> None:
        seed_stock(tee=5)
        order_no = add_order(lines=[(TEE, 2)])
        (wave,) = waves()
        with session_scope() as session:
            review_wave(session, wave["id"], instance_id=None)
            assert balance(session, sku=TEE, location=ONLINE_WAREHOUSE)["reserved"] == 2
        set_status(order_no, "cancelled")
        with session_scope() as session:
            assert balance(session, sku=TEE, location=ONLINE_WAREHOUSE) == {"on_hand": 5, "reserved": 0, "available": 5}

    def test_a_second_cancellation_changes_nothing(self) -> None:
        seed_stock()
        order_no = add_order()
        set_status(order_no, "cancelled")
        set_status(order_no, "cancelled")
        assert order_row(order_no)["history"].count("cancelled") == 1


class TestConcurrentReviews:
    def test_waves_reviewed_at_once_never_deadlock_on_the_stock_rows(self, max_orders_3: None) -> None:
        # Orders list their SKUs in both orders: the ledger must lock the balance rows in one order regardless.
        seed_stock(tee=1000, cap=1000)
        for number in range(24):
            add_order(lines=[(TEE, 1), (CAP, 1)] if number % 2 else [(CAP, 1), (TEE, 1)])
        closed = [w for w in waves() if w["state"] == "closed"]
        errors: list[BaseException] = []

        def review(wave: dict) -> None:
            try:
                with session_scope() as session:
                    review_wave(session, wave["id"], instance_id=wave["instance_id"])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=review, args=(wave,)) for wave in closed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and len(closed) == 8
        with session_scope() as session:
            assert balance(session, sku=CAP, location=ONLINE_WAREHOUSE)["reserved"] == 24


class TestLiveCount:
    def test_an_order_cancelled_in_an_open_wave_no_longer_counts_toward_max_orders(self, max_orders_3: None) -> None:
        seed_stock()
        first, dropped = add_order(), add_order()
        set_status(dropped, "cancelled")
        (wave,) = waves()
        assert (wave["state"], wave["orders"]) == ("open", 1)
        third, fourth = add_order(), add_order()
        (full,) = waves()
        assert (full["state"], full["orders"]) == ("closed", 3)
        assert {order_row(no)["wave_id"] for no in (first, third, fourth)} == {full["id"]}
        assert _instances() == [(f"wave-{full['id']}", {"wave_id": full["id"]}, "system")]

    def test_an_order_shipped_outside_leaves_an_open_wave_and_its_count(self, max_orders_3: None) -> None:
        seed_stock()
        add_order()
        gone = add_order()
        set_status(gone, "shipped")
        (wave,) = waves()
        assert (wave["state"], wave["orders"]) == ("open", 1)
        assert order_row(gone)["fulfilment_state"] == "shipped_outside"


class TestShippedOutside:
    @pytest.mark.parametrize("status", ["shipped", "completed"])
    def test_an_unreviewed_order_shipped_by_hand_is_booked_out_once_by_that_report(self, status: str) -> None:
        seed_stock(tee=5, cap=5)
        order_no = add_order(lines=[(TEE, 2)])
        set_status(order_no, status)
        set_status(order_no, "shipped" if status == "completed" else "completed")  # a later export: nothing moves
        row = order_row(order_no)
        assert row["fulfilment_state"] == "shipped_outside"
        assert row["history"] == [
            *("order.imported", "joined_wave", "order.status_changed", "shipped_outside", "left_wave"),
            "order.status_changed",
        ]
        with session_scope() as session:
            assert balance(session, sku=TEE, location=ONLINE_WAREHOUSE) == {"on_hand": 3, "reserved": 0, "available": 3}

    def test_a_reviewed_order_ships_its_reservation_and_the_wave_skips_it(self) -> None:
        seed_stock(tee=5, cap=5)
        order_no = add_order(lines=[(TEE, 2)])
        (wave,) = waves()
        with session_scope() as session:
            review_wave(session, wave["id"], instance_id=None)
        set_status(order_no, "shipped")
        with session_scope() as session:
            assert balance(session, sku=TEE, location=ONLINE_WAREHOUSE) == {"on_hand": 3, "reserved": 0, "available": 3}
            assert advance(session, wave["id"], source="in_wave", target="picked", event="picked", by="wh") == []

    def test_stock_short_books_nothing_and_says_so(self) -> None:
        seed_stock(tee=1)
        order_no = add_order(lines=[(TEE, 3)])
        set_status(order_no, "shipped")
        with session_scope() as session:
            order = session.scalar(select(PlatformOrder).where(PlatformOrder.order_no == order_no))
            event = session.scalar(
                select(PlatformOrderEvent).where(
                    PlatformOrderEvent.order_id == order.id, PlatformOrderEvent.type == "shipped_outside"
                )
            )
            assert event.data["stock_booked_out"] == [] and event.data["stock_short"][0]["sku"] == TEE
            assert balance(session, sku=TEE, location=ONLINE_WAREHOUSE) == {"on_hand": 1, "reserved": 0, "available": 1}

    def test_an_order_shipped_by_the_wave_is_not_touched_by_the_later_report(self) -> None:
        seed_stock(tee=5, cap=5)
        order_no = add_order(lines=[(TEE, 1)])
        (wave,) = waves()
        with session_scope() as session:
            review_wave(session, wave["id"], instance_id=None)
            advance(session, wave["id"], source="in_wave", target="packed", event="packed", by="wh")
            ship_wave(
                session,
                wave["id"],
                [{"order_no": order_no, "carrier": "中通", "tracking_no": "Z1"}],
                by="wh",
                instance_id=None,
            )
        set_status(order_no, "shipped")
        assert order_row(order_no)["fulfilment_state"] == "shipped"
        with session_scope() as session:
            assert balance(session, sku=TEE, location=ONLINE_WAREHOUSE)["on_hand"] == 4


class TestBatchJoin:
    def test_one_import_batch_fills_waves_in_order_and_closes_each_full_one(self, max_orders_3: None) -> None:
        seed_stock()
        records = [
            OrderRecord(
                platform="tmall",
                order_no=f"BJ{uuid.uuid4().hex[:8]}{n}",
                status="paid",
                platform_status="买家已付款，等待卖家发货",
                paid_amount=Decimal("99.00"),
                ordered_at=utcnow(),
                paid_at=utcnow(),
                lines=(OrderLineRecord(sku=TEE, title="T恤", quantity=1, price=Decimal("99")),),
            )
            for n in range(7)
        ]
        with session_scope() as session:
            run = ImportRun(kind="orders", platform="tmall", source="push:tests", actor="import:test")
            apply(session, "orders", records, actor="import:test", run=run)
        first, second, third = waves()
        assert [(w["state"], w["orders"]) for w in (first, second, third)] == [
            ("closed", 3),
            ("closed", 3),
            ("open", 1),
        ]
        assert [order_row(r.order_no)["wave_id"] for r in records] == [first["id"]] * 3 + [second["id"]] * 3 + [
            third["id"]
        ]
        assert all(order_row(r.order_no)["history"] == ["order.imported", "joined_wave"] for r in records)
        assert sorted(key for key, _, _ in _instances()) == sorted([f"wave-{first['id']}", f"wave-{second['id']}"])
