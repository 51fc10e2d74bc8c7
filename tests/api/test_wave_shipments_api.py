"""发货 by file: POST /waves/{id}/shipments with the courier's tracking numbers, over real HTTP."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta

from openpyxl import Workbook
from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.intake.fulfilment import advance, apply_scans, review_wave
from ecomflow.engine.intake.waves import IN_WAVE, PICKED
from ecomflow.engine.sla.sweeper import sweep_once
from ecomflow.engine.tasks.step_tasks import open_task
from tests.api.conftest import Caller, assert_error
from tests.platform_orders import add_order, order_row, seed_stock, set_status, waves

HEADER = "订单编号,物流公司,运单号"


def _wave_at_ship_step(count: int = 2) -> tuple[dict, list[str], str]:
    """Orders packed in a closed wave whose ship task is open, as the flow leaves it; return wave, orders, task id."""
    seed_stock()
    orders = [add_order() for _ in range(count)]
    sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
    wave = next(w for w in waves() if w["state"] == "closed")
    with session_scope() as session:
        review_wave(session, wave["id"], instance_id=wave["instance_id"])
        advance(session, wave["id"], source=IN_WAVE, target=PICKED, event="picked", by="wh")
        apply_scans(session, wave["id"], {"all_ok": True}, by="wh", source=PICKED)
        step = get_definitions().process("order_fulfilment").step("ship")
        task = open_task(session, instance_id=wave["instance_id"], step=step, context={"wave_id": wave["id"]})
        return wave, orders, task.id


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\ufeff" + "\r\n".join([header, *rows]) + "\r\n").encode("utf-8")


def _upload(caller: Caller, wave_id: int, content: bytes, name: str = "运单号.csv"):
    return caller.post(f"/waves/{wave_id}/shipments", files={"file": (name, content, "text/csv")})


def _task_state(task_id: str) -> tuple[str, dict | None]:
    with session_scope() as session:
        task = session.scalar(select(HumanTask).where(HumanTask.id == task_id))
        return task.state, task.output


def _holder(login: Callable[..., Caller], task_id: str) -> Caller:
    """A warehouse user who claimed the ship task, as before typing the form."""
    warehouse = login("warehouse")
    assert warehouse.post(f"/tasks/{task_id}/claim").status_code == 200
    return warehouse


class TestShipmentsFile:
    def test_a_csv_of_tracking_numbers_completes_the_ship_step(self, login: Callable[..., Caller]) -> None:
        wave, (first, second), task_id = _wave_at_ship_step()
        warehouse = _holder(login, task_id)
        response = _upload(warehouse, wave["id"], _csv(f"{first},中通快递,ZT001", f"{second},圆通速递,YT002"))
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "completed"
        state, output = _task_state(task_id)
        assert state == "completed" and output == {
            "shipments": [
                {"order_no": first, "carrier": "中通快递", "tracking_no": "ZT001"},
                {"order_no": second, "carrier": "圆通速递", "tracking_no": "YT002"},
            ]
        }

    def test_a_jd_xlsx_with_other_columns_is_read_too(self, login: Callable[..., Caller]) -> None:
        wave, (only,), task_id = _wave_at_ship_step(count=1)
        warehouse = _holder(login, task_id)
        book = Workbook()
        book.active.append(["订单号", "收件人", "物流公司", "运单号"])
        book.active.append([only, "张*", "京东物流", "JDV0001"])
        out = io.BytesIO()
        book.save(out)
        response = warehouse.post(
            f"/waves/{wave['id']}/shipments",
            files={"file": ("tracking.xlsx", out.getvalue(), "application/octet-stream")},
        )
        assert response.status_code == 200, response.text
        assert _task_state(task_id)[1]["shipments"] == [
            {"order_no": only, "carrier": "京东物流", "tracking_no": "JDV0001"}
        ]

    def test_every_bad_row_is_named_by_line_and_rule_and_nothing_is_applied(self, login: Callable[..., Caller]) -> None:
        wave, (first, second), task_id = _wave_at_ship_step()
        warehouse = _holder(login, task_id)
        content = _csv(
            f"{first},中通快递,", f"{first},中通快递,ZT9", "NOT-IN-WAVE,中通快递,ZT3", f"{first},{'长' * 51},ZT4"
        )
        body = assert_error(_upload(warehouse, wave["id"], content), 422, "ValidationFailed")
        found = {(f["field"], f["rule"]) for f in body["fields"]}
        assert found == {
            ("file line 2: 运单号", "required"),
            ("file line 3: 订单编号", "unique"),
            ("file line 4: 订单编号", "not_in_wave"),
            ("file line 5: 订单编号", "unique"),
            ("file line 5: 物流公司", "max_length"),
            ("file", "every_order_shipped"),
        }
        assert _task_state(task_id) == ("claimed", None)
        assert order_row(first)["fulfilment_state"] == "packed" and order_row(second)["tracking_no"] is None

    def test_a_file_without_the_columns_is_refused_naming_them(self, login: Callable[..., Caller]) -> None:
        wave, (first, _), _ = _wave_at_ship_step()
        content = _csv(f"{first},ZT1", header="订单编号,快递单号")
        body = assert_error(_upload(login("warehouse"), wave["id"], content), 422, "ValidationFailed")
        assert body["fields"][0]["rule"] == "columns" and "物流公司" in body["fields"][0]["message"]

    def test_an_order_cancelled_after_packing_may_be_left_out_or_named(self, login: Callable[..., Caller]) -> None:
        wave, (kept, dropped), task_id = _wave_at_ship_step()
        set_status(dropped, "cancelled")
        response = _upload(_holder(login, task_id), wave["id"], _csv(f"{kept},中通快递,ZT1", f"{dropped},中通快递,ZT2"))
        assert response.status_code == 200, response.text

    def test_a_wave_not_at_its_ship_step_is_a_conflict(self, login: Callable[..., Caller]) -> None:
        seed_stock()
        order_no = add_order()
        wave_id = order_row(order_no)["wave_id"]
        assert_error(_upload(login("warehouse"), wave_id, _csv(f"{order_no},中通快递,ZT1")), 409, "Conflict")

    def test_a_task_held_by_a_colleague_is_theirs_to_complete(self, login: Callable[..., Caller]) -> None:
        wave, (first, second), task_id = _wave_at_ship_step()
        _holder(login, task_id)
        response = _upload(login("warehouse"), wave["id"], _csv(f"{first},中通快递,ZT1", f"{second},中通快递,ZT2"))
        assert_error(response, 403, "Forbidden")
        assert _task_state(task_id)[0] == "claimed"

    def test_other_roles_do_not_see_the_wave(self, login: Callable[..., Caller]) -> None:
        wave, (first, _second), _ = _wave_at_ship_step()
        assert_error(_upload(login("visual"), wave["id"], _csv(f"{first},中通快递,ZT1")), 404, "NotFound")
