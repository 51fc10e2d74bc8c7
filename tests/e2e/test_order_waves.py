"""Paid platform orders fill a wave; its warehouse steps over HTTP ship them; exceptions leave as cases of their own.

Orders are inserted as an import leaves them and order_changed is called, as ingest.apply does.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance
from ecomflow.engine.sla.sweeper import sweep_once
from tests.e2e.conftest import Staff, wait_until
from tests.platform_orders import CAP, TEE, add_order, seed_stock, set_status

pytestmark = [pytest.mark.e2e, pytest.mark.processes]


def _stock(sku: str) -> dict[str, int]:
    with session_scope() as session:
        return balance(session, sku=sku, location=ONLINE_WAREHOUSE)


def _order(staff: Staff, order_no: str) -> dict[str, Any]:
    response = staff.get(f"/orders/tmall/{order_no}")
    assert response.status_code == 200, response.text
    return response.json()


def _close_due_waves() -> None:
    """Let the wave's window pass: the sweeper closes it and starts its fulfilment."""
    sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)


def _csv(staff: Staff, href: str) -> list[list[str]]:
    response = staff.get(href)
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))


def _task_context(staff: Staff, task: dict[str, Any]) -> dict[str, Any]:
    response = staff.get(f"/tasks/{task['id']}")
    assert response.status_code == 200, response.text
    return response.json()["context"]


def _ship_through_the_warehouse(warehouse: Staff, instance_id: str, shipments: dict[str, str]) -> dict[str, Any]:
    """打单, 配货, 验货打包 (all ok), 发货 over HTTP; return the files the print task linked."""
    printing = warehouse.wait_for_task(instance_id, "print_waybills")
    files = {link["href"].rsplit("/", 1)[-1]: link["href"] for link in _task_context(warehouse, printing)["files"]}
    waybills = _csv(warehouse, files["waybills.csv"])
    warehouse.do(printing["id"], {"carrier": "中通快递"})
    picking = warehouse.wait_for_task(instance_id, "pick")
    pick_list = _csv(warehouse, files["pick-list.csv"])
    warehouse.do(picking["id"], {"pick_list_no": "P-001"})
    packing = warehouse.wait_for_task(instance_id, "check_and_pack")
    scans = [{"order_no": order_no, "result": "ok"} for order_no in shipments]
    warehouse.do(packing["id"], {"scans": scans})
    shipping = warehouse.wait_for_task(instance_id, "ship")
    rows = [{"order_no": no, "carrier": "中通快递", "tracking_no": tracking} for no, tracking in shipments.items()]
    warehouse.do(shipping["id"], {"shipments": rows})
    warehouse.wait_for_state(instance_id, "completed", timeout=90)
    return {"waybills": waybills, "pick_list": pick_list}


def test_an_import_fills_a_wave_that_ships_its_orders_while_exceptions_and_cancellations_leave(
    team: dict[str, Staff],
) -> None:
    warehouse, cs = team["warehouse"], team["cs"]
    seed_stock(tee=20, cap=20)
    _close_due_waves()  # a wave an earlier test (the demo's import) left open must not take these orders
    plain = [add_order(lines=[(TEE, 1), (CAP, 1)]) for _ in range(2)]
    cancelled = add_order(lines=[(TEE, 5)])
    asked = add_order(lines=[(TEE, 1)], buyer_message="请用顺丰")
    wave = _order(warehouse, plain[0])["wave"]
    assert wave["state"] == "open" and all(_order(warehouse, no)["wave"]["id"] == wave["id"] for no in plain)

    _close_due_waves()
    wave = warehouse.get(f"/waves/{wave['id']}").json()
    assert wave["state"] == "closed" and wave["order_count"] == 4 and wave["instance_id"]
    # 审单 runs by itself: the order with a buyer message leaves into a case of its own.
    warehouse.wait_for_task(wave["instance_id"], "print_waybills")
    left = _order(cs, asked)
    assert left["fulfilment_state"] == "exception" and left["wave"]["id"] != wave["id"]
    assert [e["type"] for e in left["history"]] == ["order.imported", "joined_wave", "exception", "left_wave"]
    # The platform cancels an order before it ships: it leaves, its reservation goes back.
    assert _stock(TEE)["reserved"] == 7
    set_status(cancelled, "cancelled")
    assert _stock(TEE)["reserved"] == 2 and _order(warehouse, cancelled)["fulfilment_state"] == "cancelled"

    files = _ship_through_the_warehouse(warehouse, wave["instance_id"], {plain[0]: "ZT100", plain[1]: "ZT101"})
    assert [row[0] for row in files["waybills"][1:]] == plain
    assert files["pick_list"][1:] == [[ONLINE_WAREHOUSE, CAP, CAP, "2", "2"], [ONLINE_WAREHOUSE, TEE, TEE, "2", "2"]]
    for order_no, tracking in zip(plain, ("ZT100", "ZT101"), strict=True):
        shipped = _order(warehouse, order_no)
        assert (shipped["fulfilment_state"], shipped["tracking_no"]) == ("shipped", tracking)
        assert [e["type"] for e in shipped["history"]][-1] == "shipped"
    assert _stock(TEE) == {"on_hand": 18, "reserved": 0, "available": 18}
    assert _stock(CAP) == {"on_hand": 18, "reserved": 0, "available": 18}
    upload = _csv(warehouse, f"/waves/{wave['id']}/delivery-upload")
    assert upload == [
        ["订单编号", "物流公司", "运单号"],
        [plain[0], "中通快递", "ZT100"],
        [plain[1], "中通快递", "ZT101"],
    ]

    # Customer service passes the case; it ships on its own.
    case = left["case_instance_id"]
    review = cs.wait_for_task(case, "review_exception")
    assert _task_context(cs, review)["reasons"][0]["rule"] == "buyer_message"
    cs.do(review["id"], {"decision": "pass", "notes": "已备注顺丰"})
    _ship_through_the_warehouse(warehouse, case, {asked: "SF200"})
    assert _order(cs, asked)["tracking_no"] == "SF200"
    assert _stock(TEE) == {"on_hand": 17, "reserved": 0, "available": 17}


def test_a_case_whose_order_the_platform_cancels_ends(team: dict[str, Staff]) -> None:
    warehouse, cs = team["warehouse"], team["cs"]
    seed_stock(tee=20, cap=20)
    flagged = add_order(lines=[(TEE, 1)], risk_flag="收货地址疑似虚假")
    wave_id = _order(cs, flagged)["wave"]["id"]
    _close_due_waves()
    instance_id = warehouse.get(f"/waves/{wave_id}").json()["instance_id"]
    # Nothing passed 审单: the wave is done without a warehouse task (so only managers see its instance).
    assert team["ops"].wait_for_state(instance_id, "completed")["result"]["outcome"] == "no_orders_left"
    assert warehouse.get(f"/waves/{wave_id}").json()["state"] == "done"
    case = _order(cs, flagged)["case_instance_id"]
    cs.wait_for_task(case, "review_exception")
    set_status(flagged, "cancelled")
    assert cs.wait_for_state(case, "cancelled")["state"] == "cancelled"
    assert _order(cs, flagged)["fulfilment_state"] == "cancelled"
    wait_until(lambda: cs._open_task(case, "review_exception", 1) is None, timeout=30, what="the review task gone")
