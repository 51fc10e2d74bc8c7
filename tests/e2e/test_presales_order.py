"""Pre-sales inquiries over HTTP: an order takes the one shared stock exactly once.

Then it joins a wave that ships it (version 3), or is picked up in a store.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask, StockMovement, Timer
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, available_by_sku, balance
from ecomflow.engine.sla.sweeper import sweep_once
from tests.e2e.conftest import Staff, prefect_api, prefect_run_state, wait_until
from tests.platform_orders import set_status

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "presales_order"


def make_sku(stock: int) -> str:
    code = f"SKU-{uuid.uuid4().hex[:8]}"
    set_stock(code, stock)
    return code


def set_stock(sku: str, stock: int) -> None:
    """Put the SKU in the catalogue with this much available (on hand beyond what is reserved) at the warehouse."""
    with session_scope() as session:
        held = balance(session, sku=sku, location=ONLINE_WAREHOUSE)["reserved"]
        seed_sku(session, sku=sku, title="纯棉短袖T恤", list_price=Decimal("109.00"), stock=stock + held)


def stock_of(*skus: str) -> list[int]:
    """Return what is available (on hand less reserved) of each SKU at the online warehouse."""
    with session_scope() as session:
        available = available_by_sku(session, list(skus), location=ONLINE_WAREHOUSE)
        return [available.get(sku, 0) for sku in skus]


def reservations_of(instance_id: str) -> list[tuple[str, int, str]]:
    """Return the order's lines still held or settled: (sku, quantity, how it ended: reserved/ship/store_pickup)."""
    with session_scope() as session:
        rows = list(session.scalars(select(StockMovement).where(StockMovement.instance_id == instance_id)))
        # The wave that ships an inquiry's order settles the inquiry's reservation under the wave's instance.
        keys = [r.business_key for r in rows if r.kind == "reserve"]
        settles = session.scalars(
            select(StockMovement).where(
                StockMovement.business_key.in_(keys), StockMovement.kind.in_(("ship", "store_pickup", "release"))
            )
        )
        settled = {r.business_key: r.kind for r in settles}
    return sorted(
        (r.sku, r.quantity, settled.get(r.business_key, "reserved"))
        for r in rows
        if r.kind == "reserve" and settled.get(r.business_key) != "release"
    )


def count(model, *conditions) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*conditions))


def start_inquiry(cs: Staff) -> str:
    params = {
        "customer": f"buyer-{uuid.uuid4().hex[:6]}",
        "question": "这款T恤有L码吗？能今天发货吗？",
        "channel": "im",
    }
    return cs.start(PROCESS, params, business_key=f"INQ-{uuid.uuid4().hex[:8]}")["id"]


def order(lines: list[tuple[str, int]], *, fulfilment: str = "ship", **extra: Any) -> dict[str, Any]:
    return {
        "recommended_skus": [sku for sku, _ in lines],
        "outcome": "ordered",
        "order_id": f"ORD-{uuid.uuid4().hex[:8]}",
        "order_lines": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        "fulfilment": fulfilment,
        **extra,
    }


def answer(cs: Staff, instance_id: str, data: dict[str, Any], *, round: int = 1) -> None:
    cs.do(cs.wait_for_task(instance_id, "answer_inquiry", round=round)["id"], data)


def in_wave(cs: Staff, instance_id: str) -> dict[str, Any]:
    """Version 3: a shipped order leaves the inquiry for a wave; the inquiry completes as in_wave."""
    done = cs.wait_for_state(instance_id, "completed")
    assert done["result"]["outcome"] == "in_wave", done["result"]
    assert not any(t["role"] == "warehouse" for t in done["tasks"])
    return done


def close_wave(warehouse: Staff, wave_id: int) -> str:
    """Let the wave's window pass; return its order_fulfilment instance."""
    sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
    wave = warehouse.get(f"/waves/{wave_id}").json()
    assert wave["state"] == "closed", wave
    return wave["instance_id"]


def ship(cs: Staff, warehouse: Staff, instance_id: str) -> dict[str, Any]:
    """The order's wave: 打单 → 配货 → 验货打包 → 发货 (审单 ran by its rules); return the order from GET /orders."""
    result = in_wave(cs, instance_id)["result"]
    wave_instance = close_wave(warehouse, result["wave_id"])
    warehouse.do(warehouse.wait_for_task(wave_instance, "print_waybills")["id"], {"carrier": "SF"})
    warehouse.do(warehouse.wait_for_task(wave_instance, "pick")["id"], {"pick_list_no": "PL-1"})
    warehouse.do(warehouse.wait_for_task(wave_instance, "check_and_pack")["id"], {"all_ok": True})
    shipping = warehouse.wait_for_task(wave_instance, "ship")  # the scans are recorded once it is open
    packed = [
        o for o in warehouse.get(f"/waves/{result['wave_id']}").json()["orders"] if o["fulfilment_state"] == "packed"
    ]
    shipments = [
        {"order_no": o["order_no"], "carrier": "SF", "tracking_no": f"SF{i:010d}"} for i, o in enumerate(packed)
    ]
    warehouse.do(shipping["id"], {"shipments": shipments})
    warehouse.wait_for_state(wave_instance, "completed")
    return warehouse.get(f"/orders/{result['platform']}/{result['order_no']}").json()


def prefect_state(flow_run_id: str) -> str:
    return prefect_run_state(flow_run_id)["type"]


class TestShip:
    def test_order_ships_and_takes_the_stock_exactly_once_even_after_a_replay(self, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        tee, cap = make_sku(10), make_sku(4)
        instance_id = start_inquiry(cs)
        # The same SKU on two lines counts as one line of 3.
        data = order([(tee, 2), (cap, 1), (tee, 1)])
        answer(cs, instance_id, data)
        result = in_wave(cs, instance_id)["result"]
        assert sorted((line["sku"], line["quantity"]) for line in result["lines"]) == sorted([(tee, 3), (cap, 1)])
        assert (result["platform"], result["order_no"]) == ("tmall", data["order_id"])
        assert stock_of(tee, cap) == [7, 3]

        # The wave's 审单 keeps the inquiry's reservation; a replay of its run takes nothing more.
        wave_instance = close_wave(warehouse, result["wave_id"])
        printing = warehouse.wait_for_task(wave_instance, "print_waybills")
        assert stock_of(tee, cap) == [7, 3]
        flow_run_id = team["ops"].instance(wave_instance)["flow_run_id"]
        wait_until(lambda: prefect_state(flow_run_id) == "PAUSED", timeout=30, what="run suspended on print_waybills")
        response = prefect_api("POST", f"/flow_runs/{flow_run_id}/resume", json={})
        assert response.status_code in (200, 201), response.text
        wait_until(
            lambda: (
                count(AuditEvent, AuditEvent.task_id == printing["id"], AuditEvent.type == "task.resumed_while_open")
                == 1
            ),
            timeout=60,
            what="the replay to reach the open print_waybills",
        )
        wait_until(lambda: prefect_state(flow_run_id) == "PAUSED", timeout=60, what="run suspended again")
        assert stock_of(tee, cap) == [7, 3]

        shipped = ship(cs, warehouse, instance_id)
        assert shipped["fulfilment_state"] == "shipped" and shipped["inquiry_instance_id"] == instance_id
        assert [e["type"] for e in shipped["history"]] == [
            *("joined_wave", "reviewed", "waybill_printed", "picked", "packed", "shipped")
        ]
        assert stock_of(tee, cap) == [10 - 3, 4 - 1]
        assert sorted(reservations_of(instance_id)) == sorted([(tee, 3, "ship"), (cap, 1, "ship")])


class TestFulfilment:
    def test_warehouse_due_times_count_every_hour_of_the_dispatch_promise(self, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        tee = make_sku(3)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, order([(tee, 1)]))
        wave_instance = close_wave(warehouse, in_wave(cs, instance_id)["result"]["wave_id"])
        waybill = warehouse.get(f"/tasks/{warehouse.wait_for_task(wave_instance, 'print_waybills')['id']}").json()
        # Wall-clock time: 4 h after it opened, whatever the hour or day (business hours would stretch it).
        opened, due = datetime.fromisoformat(waybill["created_at"]), datetime.fromisoformat(waybill["due_at"])
        assert due - opened == timedelta(hours=4)

    def test_an_order_the_platform_cancels_in_its_wave_puts_its_stock_back(self, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        tee = make_sku(3)
        instance_id = start_inquiry(cs)
        data = order([(tee, 2)])
        answer(cs, instance_id, data)
        in_wave(cs, instance_id)
        assert stock_of(tee) == [1]
        set_status(data["order_id"], "cancelled")
        assert stock_of(tee) == [3]
        cancelled = warehouse.get(f"/orders/tmall/{data['order_id']}").json()
        assert cancelled["fulfilment_state"] == "cancelled"
        assert [e["type"] for e in cancelled["history"]] == [
            *("joined_wave", "order.status_changed", "cancelled", "left_wave")
        ]


class TestStorePickup:
    def test_pickup_reads_the_same_stock_as_the_shop(self, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        tee = make_sku(5)
        online = start_inquiry(cs)
        answer(cs, online, order([(tee, 2)]))
        in_wave(cs, online)
        assert stock_of(tee) == [3]

        in_store = start_inquiry(cs)
        answer(cs, in_store, order([(tee, 3)], fulfilment="store_pickup", pickup_store="南京西路店"))
        prepare = warehouse.wait_for_task(in_store, "prepare_pickup")
        assert warehouse.get(f"/tasks/{prepare['id']}").json()["context"]["pickup_store"] == "南京西路店"
        assert stock_of(tee) == [0]
        warehouse.do(prepare["id"], {"store": "南京西路店", "shelf_location": "B-12"})

        picked = cs.wait_for_task(in_store, "picked_up")
        cs.do(picked["id"], {"outcome": "picked_up", "picked_up_at": "2025-12-01T15:30:00+08:00"})
        done = cs.wait_for_state(in_store, "completed")
        assert (done["result"]["outcome"], done["result"]["store"]) == ("picked_up", "南京西路店")
        assert reservations_of(in_store) == [(tee, 3, "store_pickup")]
        assert "wave_id" not in done["result"]  # store pickup never joins a wave

        # The stock both channels share is now empty: the next order, online, is short.
        third = start_inquiry(cs)
        answer(cs, third, order([(tee, 1)]))
        team["ops"].wait_for_task(third, "shortage_decision")
        assert stock_of(tee) == [0]

    def test_goods_not_collected_go_back_into_the_shared_stock_once(self, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        tee = make_sku(4)
        in_store = start_inquiry(cs)
        answer(cs, in_store, order([(tee, 1), (tee, 2)], fulfilment="store_pickup", pickup_store="淮海路店"))
        prepare = warehouse.wait_for_task(in_store, "prepare_pickup")
        assert stock_of(tee) == [1]  # the two lines of one SKU were taken together
        warehouse.do(prepare["id"], {"store": "淮海路店", "shelf_location": "A-03"})
        cs.do(cs.wait_for_task(in_store, "picked_up")["id"], {"outcome": "not_collected", "notes": "顾客七天未到店"})
        done = cs.wait_for_state(in_store, "completed")
        assert done["result"]["stock_released"] == [{"sku": tee, "location": ONLINE_WAREHOUSE, "quantity": 3}]
        assert stock_of(tee) == [4]
        assert count(AuditEvent, AuditEvent.instance_id == in_store, AuditEvent.type == "stock.release") == 1


class TestShortage:
    def test_shortage_goes_to_operations_and_partial_ship_takes_what_there_is(self, team: dict[str, Staff]) -> None:
        cs, ops, warehouse = team["cs"], team["ops"], team["warehouse"]
        tee = make_sku(1)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, order([(tee, 3)]))

        decision = ops.wait_for_task(instance_id, "shortage_decision")
        detail = ops.get(f"/tasks/{decision['id']}").json()
        assert detail["role"] == "operations"
        assert detail["context"]["short"] == [{"sku": tee, "location": ONLINE_WAREHOUSE, "wanted": 3, "available": 1}]
        assert stock_of(tee) == [1] and reservations_of(instance_id) == []
        ops.do(decision["id"], {"decision": "partial_ship", "notes": "先发1件，其余退款"})

        result = in_wave(cs, instance_id)["result"]
        assert result["unfilled"] == [{"sku": tee, "quantity": 2}]
        assert result["shortage_decisions"][0]["decision"] == "partial_ship"
        shipped = ship(cs, warehouse, instance_id)
        assert [(line["sku"], line["quantity"]) for line in shipped["lines"]] == [(tee, 1)]
        assert stock_of(tee) == [0]

    def test_cancel_reserves_nothing(self, team: dict[str, Staff]) -> None:
        cs, ops = team["cs"], team["ops"]
        tee = make_sku(2)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, order([(tee, 5)]))
        ops.do(
            ops.wait_for_task(instance_id, "shortage_decision")["id"],
            {"decision": "cancel_order", "notes": "顾客不愿等待"},
        )
        done = cs.wait_for_state(instance_id, "completed")
        assert done["result"]["outcome"] == "cancelled"
        assert stock_of(tee) == [2] and reservations_of(instance_id) == []

    def test_transfer_checks_again_at_once_and_a_second_shortage_returns_to_operations(
        self, team: dict[str, Staff]
    ) -> None:
        cs, ops = team["cs"], team["ops"]
        tee = make_sku(0)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, order([(tee, 2)]))
        # Transfer decided before the goods were booked in: still short, operations decides again.
        ops.do(ops.wait_for_task(instance_id, "shortage_decision")["id"], {"decision": "transfer_from_store"})
        second = ops.wait_for_task(instance_id, "shortage_decision", round=2)
        earlier = ops.get(f"/tasks/{second['id']}").json()["context"]["earlier_decisions"]
        assert [d["decision"] for d in earlier] == ["transfer_from_store"]

        set_stock(tee, 2)  # the store's goods are booked into the shared stock
        ops.do(second["id"], {"decision": "transfer_from_store", "notes": "已从徐汇店调拨2件"})
        in_wave(cs, instance_id)
        assert stock_of(tee) == [0]
        assert reservations_of(instance_id) == [(tee, 2, "reserved")]

    def test_backorder_checks_the_stock_again_when_its_timer_fires(self, team: dict[str, Staff]) -> None:
        cs, ops = team["cs"], team["ops"]
        tee = make_sku(0)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, order([(tee, 1)]))
        ops.do(
            ops.wait_for_task(instance_id, "shortage_decision")["id"], {"decision": "backorder", "notes": "下周到货"}
        )

        def armed() -> Timer | None:
            with session_scope() as session:
                return session.scalar(
                    select(Timer).where(Timer.instance_id == instance_id, Timer.step_key == "stock_check")
                )

        timer = wait_until(armed, timeout=60, what="the backorder re-check timer")
        assert sweep_once(now=timer.fire_at - timedelta(minutes=1)).timers_fired == 0
        set_stock(tee, 5)  # the replenishment arrives
        assert sweep_once(now=timer.fire_at + timedelta(minutes=1)).timers_fired == 1
        in_wave(cs, instance_id)
        assert stock_of(tee) == [4]


class TestNoOrder:
    def test_a_recommended_sku_the_shop_does_not_have_goes_back(self, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        tee = make_sku(3)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, {"recommended_skus": [tee, "NO-SUCH-SKU"], "outcome": "no_order"})
        again = cs.wait_for_task(instance_id, "answer_inquiry", round=2)
        findings = cs.get(f"/tasks/{again['id']}").json()["context"]["findings"]
        assert [(f["field"], f["rule"]) for f in findings] == [("recommended_skus[1]", "unknown_sku")]
        assert "NO-SUCH-SKU" in findings[0]["message"]
        cs.do(again["id"], {"recommended_skus": [tee], "outcome": "no_order"})
        assert cs.wait_for_state(instance_id, "completed")["result"]["recommended_skus"] == [tee]

    def test_no_order_closes_at_once(self, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        tee = make_sku(3)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, {"recommended_skus": [tee], "outcome": "no_order", "notes": "顾客再考虑"})
        done = cs.wait_for_state(instance_id, "completed")
        assert done["result"]["outcome"] == "no_order"
        assert done["result"]["recommended_skus"] == [tee]
        assert count(HumanTask, HumanTask.instance_id == instance_id) == 1
        assert stock_of(tee) == [3] and reservations_of(instance_id) == []

    def test_ordered_without_lines_goes_back_to_customer_service(self, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        tee = make_sku(3)
        instance_id = start_inquiry(cs)
        answer(cs, instance_id, {"outcome": "ordered", "order_id": "ORD-12345"})
        again = cs.wait_for_task(instance_id, "answer_inquiry", round=2)
        findings = cs.get(f"/tasks/{again['id']}").json()["context"]["findings"]
        assert [(f["field"], f["rule"]) for f in findings] == [("order_lines", "required_when_ordered")]
        cs.do(again["id"], order([(tee, 1)]))
        in_wave(cs, instance_id)
        assert stock_of(tee) == [2]
