"""A wave's order_fulfilment, run on the real database with a scripted run in place of Prefect and the inbox."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.intake.wave_files import delivery_upload, pick_list_csv, waybills_csv
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance
from ecomflow.engine.sla.sweeper import sweep_once
from ecomflow.flows.order_fulfilment import fulfil_wave
from ecomflow.flows.primitives import StepOutcome
from tests.platform_orders import CAP, TEE, add_order, order_row, seed_stock, set_status, waves

pytestmark = pytest.mark.usefixtures("clean_db")


class ScriptedRun:
    """A ProcessRun whose people answer from a script: {(step, round): (form data, by)}; auto steps run in-process."""

    def __init__(self, instance_id: str, script: dict[tuple[str, int], dict[str, Any]]) -> None:
        with session_scope() as session:
            instance = session.get(ProcessInstance, instance_id)
            self.params, self.business_key = dict(instance.params), instance.business_key
        self.instance_id, self.script = instance_id, script
        self.spec = get_definitions().process("order_fulfilment")
        self.contexts: dict[tuple[str, int], dict[str, Any]] = {}

    def human(self, step: str, *, round: int = 1, context: dict[str, Any] | None = None) -> StepOutcome:
        self.contexts[(step, round)] = context or {}
        by = "cs-lin" if step == "review_exception" else "wh-zhao"
        return StepOutcome(data=self.script[(step, round)], by=by, at=utcnow())

    def auto(self, step: str, task: Any, *args: Any, round: int = 1, **kwargs: Any) -> dict[str, Any]:
        return task.fn(*args, **kwargs)

    def next_round(self, step: str, round: int, *, context: dict[str, Any] | None = None) -> int:
        return round + 1

    def finish(self, outcome: str, **details: Any) -> dict[str, Any]:
        return {"outcome": outcome, **details}


def _closed_wave() -> dict[str, Any]:
    sweep_once(now=utcnow() + timedelta(minutes=31), forecast=False)
    return next(w for w in waves() if w["state"] == "closed")


def _warehouse(
    shipments: list[tuple[str, str]], overrides: dict[tuple[str, int], dict[str, Any]] | None = None
) -> dict[tuple[str, int], dict[str, Any]]:
    script = {
        ("print_waybills", 1): {"carrier": "中通快递"},
        ("pick", 1): {"pick_list_no": "P-1"},
        ("check_and_pack", 1): {"all_ok": True},
        ("ship", 1): {
            "shipments": [
                {"order_no": no, "carrier": "中通快递", "tracking_no": tracking} for no, tracking in shipments
            ]
        },
    }
    return {**script, **(overrides or {})}


def _stock(sku: str) -> dict[str, int]:
    with session_scope() as session:
        return balance(session, sku=sku, location=ONLINE_WAREHOUSE)


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def _case_of(order_no: str) -> str:
    return order_row(order_no)["case_instance_id"]


class TestWave:
    def test_a_wave_ships_its_orders_and_books_their_stock_out(self) -> None:
        seed_stock(tee=10, cap=10)
        first, second = add_order(lines=[(TEE, 1)]), add_order(lines=[(TEE, 2), (CAP, 1)])
        wave = _closed_wave()
        run = ScriptedRun(wave["instance_id"], _warehouse([(first, "ZT001"), (second, "ZT002")]))
        result = fulfil_wave(run)
        assert result["outcome"] == "shipped" and sorted(s["order_no"] for s in result["shipped"]) == [first, second]
        assert _stock(TEE) == {"on_hand": 7, "reserved": 0, "available": 7}
        assert _stock(CAP) == {"on_hand": 9, "reserved": 0, "available": 9}
        row = order_row(second)
        assert row["fulfilment_state"] == "shipped" and row["tracking_no"] == "ZT002"
        assert row["history"] == [
            *("order.imported", "joined_wave", "reviewed", "waybill_printed", "picked", "packed", "shipped")
        ]
        assert waves()[0]["state"] == "done"
        with session_scope() as session:
            content, media, _ = delivery_upload(session, wave["id"])
        assert media.startswith("text/csv")
        assert _rows(content) == [
            ["订单编号", "物流公司", "运单号"],
            [first, "中通快递", "ZT001"],
            [second, "中通快递", "ZT002"],
        ]
        assert run.contexts[("print_waybills", 1)]["files"][0]["href"] == f"/waves/{wave['id']}/waybills.csv"
        assert run.contexts[("ship", 1)]["upload"]["href"] == f"/waves/{wave['id']}/shipments"

    def test_the_waybill_file_and_pick_list_cover_the_wave(self) -> None:
        seed_stock()
        first, second = add_order(lines=[(TEE, 1)]), add_order(lines=[(TEE, 2), (CAP, 1)])
        wave = _closed_wave()
        with session_scope() as session:
            waybills, picks = _rows(waybills_csv(session, wave["id"])), _rows(pick_list_csv(session, wave["id"]))
        assert waybills[0] == ["订单编号", "收件人", "手机", "收货地址", "商品", "件数"]
        assert [row[0] for row in waybills[1:]] == sorted([first, second])
        assert {row[2] for row in waybills[1:]} == {"138****5678"}
        assert picks == [
            ["库位", "SKU", "商品名称", "数量", "订单数"],
            [ONLINE_WAREHOUSE, CAP, CAP, "1", "1"],
            [ONLINE_WAREHOUSE, TEE, TEE, "3", "2"],
        ]

    def test_an_order_with_a_buyer_message_leaves_into_a_case_and_the_wave_goes_on(self) -> None:
        seed_stock(tee=10, cap=10)
        plain, asked = add_order(lines=[(TEE, 1)]), add_order(lines=[(TEE, 1)], buyer_message="请周六送货")
        wave = _closed_wave()
        result = fulfil_wave(ScriptedRun(wave["instance_id"], _warehouse([(plain, "ZT001")])))
        assert result["outcome"] == "shipped" and [s["order_no"] for s in result["shipped"]] == [plain]
        (exception,) = result["review"]["exceptions"]
        assert exception["order_no"] == asked and exception["reasons"][0]["rule"] == "buyer_message"
        row = order_row(asked)
        assert row["fulfilment_state"] == "exception" and row["wave_id"] != wave["id"]
        assert row["history"] == ["order.imported", "joined_wave", "exception", "left_wave"]
        with session_scope() as session:
            case = session.get(ProcessInstance, row["case_instance_id"])
            assert (case.process_key, case.params["wave_id"]) == ("order_fulfilment", row["wave_id"])
        assert _stock(TEE)["reserved"] == 0  # the case's order holds nothing until customer service passes it

    def test_a_case_passed_by_customer_service_ships_on_its_own(self) -> None:
        seed_stock(tee=10, cap=10)
        asked = add_order(lines=[(TEE, 1)], buyer_message="请周六送货")
        fulfil_wave(ScriptedRun(_closed_wave()["instance_id"], {}))
        script = {
            ("review_exception", 1): {"decision": "pass", "notes": "周六送达已备注"},
            **_warehouse([(asked, "ZT9")]),
        }
        run = ScriptedRun(_case_of(asked), script)
        result = fulfil_wave(run)
        assert result["outcome"] == "shipped" and order_row(asked)["tracking_no"] == "ZT9"
        assert run.contexts[("review_exception", 1)]["reasons"][0]["rule"] == "buyer_message"
        assert order_row(asked)["history"] == [
            *("order.imported", "joined_wave", "exception", "left_wave", "reviewed"),
            *("waybill_printed", "picked", "packed", "shipped"),
        ]
        assert _stock(TEE) == {"on_hand": 9, "reserved": 0, "available": 9}

    def test_a_short_order_is_reviewed_until_customer_service_cancels_it(self) -> None:
        seed_stock(tee=1)
        short = add_order(lines=[(TEE, 3)])
        fulfil_wave(ScriptedRun(_closed_wave()["instance_id"], {}))
        script = {("review_exception", 1): {"decision": "pass"}, ("review_exception", 2): {"decision": "cancel_order"}}
        run = ScriptedRun(_case_of(short), script)
        result = fulfil_wave(run)
        assert result["outcome"] == "cancelled" and order_row(short)["fulfilment_state"] == "cancelled"
        assert run.contexts[("review_exception", 2)]["reasons"][0]["rule"] == "stock_short"
        assert _stock(TEE) == {"on_hand": 1, "reserved": 0, "available": 1}

    @pytest.mark.parametrize(
        ("line", "rule"), [((None, 1), "unknown_sku"), (("NO-SUCH-SKU", 1), "unknown_sku")], ids=["no_code", "unknown"]
    )
    def test_a_line_the_catalogue_lacks_is_an_exception(self, line: tuple[str | None, int], rule: str) -> None:
        seed_stock()
        order_no = add_order(lines=[(TEE, 1), line])
        result = fulfil_wave(ScriptedRun(_closed_wave()["instance_id"], {}))
        assert result["outcome"] == "no_orders_left"
        assert result["review"]["exceptions"][0]["order_no"] == order_no
        assert result["review"]["exceptions"][0]["reasons"][0]["rule"] == rule

    @pytest.mark.parametrize(("field", "value"), [("address_changed", True), ("risk_flag", "刷单嫌疑")])
    def test_an_address_change_or_a_risk_flag_is_an_exception(self, field: str, value: object) -> None:
        seed_stock()
        add_order(**{field: value})
        result = fulfil_wave(ScriptedRun(_closed_wave()["instance_id"], {}))
        assert [r["rule"] for r in result["review"]["exceptions"][0]["reasons"]] == [field]


class TestPackingAndShipping:
    def test_a_problem_at_packing_sends_that_order_into_a_case(self) -> None:
        seed_stock(tee=10, cap=10)
        good, broken = add_order(lines=[(TEE, 1)]), add_order(lines=[(TEE, 1)])
        scans = {
            "scans": [{"order_no": good, "result": "ok"}, {"order_no": broken, "result": "problem", "note": "破损"}]
        }
        script = _warehouse([(good, "ZT1")], {("check_and_pack", 1): scans})
        result = fulfil_wave(ScriptedRun(_closed_wave()["instance_id"], script))
        assert [s["order_no"] for s in result["shipped"]] == [good]
        assert [p["order_no"] for p in result["left_at_packing"]] == [broken]
        assert order_row(broken)["fulfilment_state"] == "exception"
        assert _stock(TEE)["reserved"] == 1  # the broken order keeps its goods reserved for its case

    def test_a_missing_scan_sends_the_packing_back_with_findings(self) -> None:
        seed_stock()
        first, second = add_order(), add_order()
        script = _warehouse(
            [(first, "A"), (second, "B")],
            {
                ("check_and_pack", 1): {"scans": [{"order_no": first, "result": "ok"}]},
                ("check_and_pack", 2): {"all_ok": True},
            },
        )
        run = ScriptedRun(_closed_wave()["instance_id"], script)
        assert fulfil_wave(run)["outcome"] == "shipped"
        (finding,) = run.contexts[("check_and_pack", 2)]["findings"]
        assert finding["rule"] == "every_order_scanned" and second in finding["message"]

    def test_a_missing_tracking_number_sends_the_shipping_back(self) -> None:
        seed_stock()
        first, second = add_order(), add_order()
        full = _warehouse([(first, "A"), (second, "B")])[("ship", 1)]
        script = _warehouse([(first, "A")], {("ship", 2): full})
        run = ScriptedRun(_closed_wave()["instance_id"], script)
        assert fulfil_wave(run)["outcome"] == "shipped"
        assert [f["rule"] for f in run.contexts[("ship", 2)]["findings"]] == ["every_order_shipped"]

    def test_an_order_cancelled_on_the_platform_mid_wave_is_skipped_and_its_stock_released(self) -> None:
        seed_stock(tee=10, cap=10)
        kept, dropped = add_order(lines=[(TEE, 1)]), add_order(lines=[(TEE, 2)])
        wave = _closed_wave()

        class CancelAfterPicking(ScriptedRun):
            def human(self, step: str, **kwargs: Any) -> StepOutcome:
                if step == "check_and_pack":
                    set_status(dropped, "cancelled")
                return super().human(step, **kwargs)

        result = fulfil_wave(CancelAfterPicking(wave["instance_id"], _warehouse([(kept, "ZT1")])))
        assert [s["order_no"] for s in result["shipped"]] == [kept] and result["cancelled"] == [dropped]
        assert _stock(TEE) == {"on_hand": 9, "reserved": 0, "available": 9}
        with session_scope() as session:
            content, _, _ = delivery_upload(session, wave["id"])
        assert [row[0] for row in _rows(content)[1:]] == [kept]


def test_a_case_cancelled_on_the_platform_ends_its_review() -> None:
    seed_stock()
    asked = add_order(buyer_message="改成顺丰")
    fulfil_wave(ScriptedRun(_closed_wave()["instance_id"], {}))
    set_status(asked, "cancelled")
    with session_scope() as session:
        case = session.scalar(select(ProcessInstance).where(ProcessInstance.id == _case_of(asked)))
        assert case.state == "cancelled"


def test_an_order_shipped_by_hand_mid_wave_leaves_it_and_is_booked_out_once() -> None:
    seed_stock(tee=10, cap=10)
    kept, by_hand = add_order(lines=[(TEE, 1)]), add_order(lines=[(TEE, 2)])
    wave = _closed_wave()

    class ShippedByHandWhilePacking(ScriptedRun):
        def human(self, step: str, **kwargs: Any) -> StepOutcome:
            if step == "check_and_pack":
                set_status(by_hand, "shipped")
            return super().human(step, **kwargs)

    # The warehouse's scans and ship form were made before it left: they still name it.
    scans = {"scans": [{"order_no": kept, "result": "ok"}, {"order_no": by_hand, "result": "ok"}]}
    script = _warehouse([(kept, "ZT1"), (by_hand, "ZT2")], {("check_and_pack", 1): scans})
    result = fulfil_wave(ShippedByHandWhilePacking(wave["instance_id"], script))
    assert result["outcome"] == "shipped" and [s["order_no"] for s in result["shipped"]] == [kept]
    row = order_row(by_hand)
    assert row["fulfilment_state"] == "shipped_outside" and row["history"].count("shipped") == 0
    assert _stock(TEE) == {"on_hand": 7, "reserved": 0, "available": 7}
    with session_scope() as session:
        content, _, _ = delivery_upload(session, wave["id"])
    assert [row[0] for row in _rows(content)[1:]] == [kept]
