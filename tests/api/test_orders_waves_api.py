"""GET /orders/{platform}/{order_no} and /waves/{id} with its files, over real HTTP."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

from openpyxl import load_workbook

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake.fulfilment import advance, apply_scans, review_wave, ship_wave
from ecomflow.engine.intake.waves import IN_WAVE, PICKED
from ecomflow.engine.sla.sweeper import sweep_once
from tests.api.conftest import Caller, assert_error
from tests.platform_orders import TEE, add_order, seed_stock, waves


def _closed_wave() -> dict:
    sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
    return next(w for w in waves() if w["state"] == "closed")


def _ship(wave: dict, shipments: list[tuple[str, str]]) -> None:
    """Work the wave's steps in the engine, as its flow would."""
    with session_scope() as session:
        review_wave(session, wave["id"], instance_id=wave["instance_id"])
        advance(session, wave["id"], source=IN_WAVE, target=PICKED, event="picked", by="wh")
        apply_scans(session, wave["id"], {"all_ok": True}, by="wh", source=PICKED)
        rows = [{"order_no": no, "carrier": "京东物流", "tracking_no": t} for no, t in shipments]
        ship_wave(session, wave["id"], rows, by="wh", instance_id=wave["instance_id"])


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


class TestOrders:
    def test_an_order_shows_its_state_wave_lines_and_history(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        order_no = add_order(lines=[(TEE, 2)], buyer_message="不要发圆通")
        wave = _closed_wave()
        with session_scope() as session:
            review_wave(session, wave["id"], instance_id=wave["instance_id"])
        body = login("customer_service").get(f"/orders/tmall/{order_no}").json()
        assert body["status"] == "paid" and body["fulfilment_state"] == "exception"
        assert body["wave"]["id"] != wave["id"] and body["case_instance_id"] == body["wave"]["instance_id"]
        assert [(line["sku"], line["quantity"]) for line in body["lines"]] == [(TEE, 2)]
        assert [event["type"] for event in body["history"]] == [
            *("order.imported", "joined_wave", "exception", "left_wave")
        ]
        assert body["history"][2]["data"]["reasons"][0]["rule"] == "buyer_message"

    def test_an_unknown_order_is_404_naming_it(self, login: Callable[..., Caller]) -> None:
        body = assert_error(login("warehouse").get("/orders/jd/NOPE-1"), 404, "NotFound")
        assert "jd order NOPE-1" in body["detail"]

    def test_only_the_order_roles_read_orders(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        order_no = add_order()
        assert_error(login("visual").get(f"/orders/tmall/{order_no}"), 403, "Forbidden")
        assert login("operations").get(f"/orders/tmall/{order_no}").status_code == 200
        assert login("warehouse").get(f"/orders/tmall/{order_no}").status_code == 200


class TestWaves:
    def test_a_wave_lists_its_orders_and_files(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        first, second = add_order(), add_order()
        wave = _closed_wave()
        body = login("warehouse").get(f"/waves/{wave['id']}").json()
        assert body["state"] == "closed" and body["order_count"] == 2
        assert [(o["order_no"], o["fulfilment_state"]) for o in body["orders"]] == [(first, IN_WAVE), (second, IN_WAVE)]
        assert [f["href"] for f in body["files"]] == [
            f"/waves/{wave['id']}/waybills.csv",
            f"/waves/{wave['id']}/pick-list.csv",
        ]

    def test_the_waybill_file_and_pick_list_download(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        order_no = add_order(lines=[(TEE, 2)])
        wave = _closed_wave()
        warehouse = login("warehouse")
        waybills = warehouse.get(f"/waves/{wave['id']}/waybills.csv")
        assert waybills.headers["content-type"].startswith("text/csv")
        assert "attachment" in waybills.headers["content-disposition"]
        rows = _csv(waybills.text)
        assert rows[1][0] == order_no and rows[1][2] == "138****5678" and rows[1][5] == "2"
        picks = _csv(warehouse.get(f"/waves/{wave['id']}/pick-list.csv").text)
        assert picks[1][1:4] == [TEE, TEE, "2"]

    def test_the_tmall_delivery_upload_lists_the_shipped_orders(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        first, second = add_order(), add_order()
        wave = _closed_wave()
        warehouse = login("warehouse")
        assert_error(warehouse.get(f"/waves/{wave['id']}/delivery-upload"), 404, "NotFound")
        _ship(wave, [(first, "JD01"), (second, "JD02")])
        rows = _csv(warehouse.get(f"/waves/{wave['id']}/delivery-upload").text)
        assert rows == [["订单编号", "物流公司", "运单号"], [first, "京东物流", "JD01"], [second, "京东物流", "JD02"]]
        assert warehouse.get(f"/waves/{wave['id']}").json()["state"] == "done"

    def test_the_jd_delivery_upload_is_xlsx_with_text_numbers(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        order_no = add_order(platform="jd")
        wave = _closed_wave()
        _ship(wave, [(order_no, "JDV000123456789")])
        response = login("warehouse").get(f"/waves/{wave['id']}/delivery-upload", params={"platform": "jd"})
        assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(io.BytesIO(response.content)).active
        assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
            ["订单号", "物流公司", "运单号"],
            [order_no, "京东物流", "JDV000123456789"],
        ]

    def test_an_unknown_platform_is_refused_naming_the_field(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        order_no = add_order()
        wave = _closed_wave()
        _ship(wave, [(order_no, "X1")])
        response = login("warehouse").get(f"/waves/{wave['id']}/delivery-upload", params={"platform": "pdd"})
        body = assert_error(response, 422, "ValidationFailed")
        assert body["fields"][0]["field"] == "platform" and body["fields"][0]["rule"] == "enum"

    def test_a_wave_is_hidden_from_other_roles_and_a_missing_one_is_404(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        add_order()
        wave = _closed_wave()
        assert_error(login("promotion").get(f"/waves/{wave['id']}"), 404, "NotFound")
        assert_error(login("warehouse").get("/waves/999999/waybills.csv"), 404, "NotFound")


def test_a_wave_id_beyond_bigint_is_refused_not_a_server_error(login: Callable[..., Caller]) -> None:
    body = assert_error(login("warehouse").get(f"/waves/{2**63}"), 422, "ValidationFailed")
    assert body["fields"][0]["field"].endswith("wave_id")
