"""A return driven entirely over HTTP by the people who do it, through a real Prefect server."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import HumanTask, Refund, StockMovement
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.ratings import report_rating
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance
from ecomflow.engine.sla.sweeper import sweep_once
from tests.e2e.conftest import Stack, Staff, prefect_api, wait_until
from tests.factories import return_params

pytestmark = pytest.mark.e2e


def prefect_run(flow_run_id: str) -> dict:
    response = prefect_api("GET", f"/flow_runs/{flow_run_id}")
    response.raise_for_status()
    return response.json()


def wait_for_prefect_state(flow_run_id: str, state_type: str, timeout: float = 60) -> dict:
    def in_state() -> dict | None:
        run = prefect_run(flow_run_id)
        return run if run["state"]["type"] == state_type else None

    return wait_until(in_state, timeout=timeout, what=f"flow run {flow_run_id} to be {state_type}")


def refunds_of(instance_id: str) -> list[Refund]:
    with session_scope() as session:
        return list(session.scalars(select(Refund).where(Refund.instance_id == instance_id)))


class TestEligibleReturn:
    def test_return_is_refunded_once_and_completes_in_prefect(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        params = return_params(amount=299.0)
        started = cs.start_return(params, business_key=f"RET-{uuid.uuid4().hex[:6]}")

        review = cs.wait_for_task(started["id"], "cs_review")
        detail = cs.get(f"/tasks/{review['id']}").json()
        assert detail["context"]["policy"]["eligible"] is True
        cs.do(review["id"], {"decision": "approve", "comment": "符合七天无理由"})

        parcel = cs.wait_for_task(started["id"], "await_parcel")
        cs.do(parcel["id"], {"return_tracking_no": "SF1234567890", "carrier": "SF", "return_shipping_cost": 12})

        inspect = warehouse.wait_for_task(started["id"], "inspect")
        warehouse.do(inspect["id"], {"condition": "ok", "restock": "yes"})

        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "refunded"
        # 七天无理由: the buyer paid the return shipping; it is recorded, not refunded.
        assert done["result"]["return_shipping"] == {"cost": "12", "paid_by": "buyer", "refunded": "0"}
        refunds = refunds_of(started["id"])
        assert len(refunds) == 1 and float(refunds[0].amount) == 299.0
        run = wait_for_prefect_state(done["flow_run_id"], "COMPLETED")
        assert run["name"] == f"returns_exchange/{started['business_key']}"
        assert done["flow_run_url"].endswith(f"/runs/flow-run/{done['flow_run_id']}")


class TestIneligibleReturn:
    def test_rejected_by_customer_service_ends_the_case(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        params = return_params(category="fresh")
        started = cs.start_return(params, business_key=f"RET-{uuid.uuid4().hex[:6]}")
        review = cs.wait_for_task(started["id"], "cs_review")
        policy = cs.get(f"/tasks/{review['id']}").json()["context"]["policy"]
        assert policy["eligible"] is False
        assert any("fresh" in reason for reason in policy["reasons"])
        cs.do(review["id"], {"decision": "reject", "comment": "生鲜不支持无理由退货"})
        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "rejected"
        assert refunds_of(started["id"]) == []


class TestGoodwillReturn:
    def test_goodwill_needs_a_second_approver(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs, ops, ops2, warehouse = team["cs"], team["ops"], team["ops2"], team["warehouse"]
        late = (date.today() - timedelta(days=20)).isoformat()
        started = cs.start_return(
            return_params(delivered_on=late, kind="exchange"), business_key=f"RET-{uuid.uuid4().hex[:6]}"
        )

        # An operations manager approves the goodwill review, so they must not approve the goodwill itself.
        review = ops.wait_for_task(started["id"], "cs_review")
        ops.do(review["id"], {"decision": "approve", "comment": "老客户，破例"})
        # The inbox does not offer it to them; a claim by id is refused by the rule.
        goodwill = ops2.wait_for_task(started["id"], "goodwill_approval")
        assert ops._open_task(started["id"], "goodwill_approval", 1) is None
        refused = ops.post(f"/tasks/{goodwill['id']}/claim")
        assert refused.status_code == 409
        assert refused.json()["error"] == "FourEyesViolation"
        ops2.do(goodwill["id"], {"decision": "approve", "comment": "同意"})

        parcel = cs.wait_for_task(started["id"], "await_parcel")
        cs.do(parcel["id"], {"return_tracking_no": "YT99887766", "return_shipping_cost": 10})
        inspect = warehouse.wait_for_task(started["id"], "inspect")
        warehouse.do(inspect["id"], {"condition": "ok", "restock": "yes"})
        reship = warehouse.wait_for_task(started["id"], "reship")
        warehouse.do(reship["id"], {"carrier": "SF", "tracking_no": "SF000111222"})
        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "reshipped"
        assert refunds_of(started["id"]) == []


class TestCaseKinds:
    def test_refund_only_pays_without_a_parcel(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        params = return_params(kind="refund_only", amount=49.0, reason="少发一件赠品")
        params.pop("delivered_on")
        started = cs.start_return(params, business_key=f"RET-{uuid.uuid4().hex[:6]}")
        with session_scope() as session:
            report_rating(session, order_id=params["order_id"], rating=3)  # 中评: a middle rating
        cs.do(cs.wait_for_task(started["id"], "cs_review")["id"], {"decision": "approve"})

        # 中差评 triggers the follow-up call: a middle rating too.
        follow_up = cs.wait_for_task(started["id"], "follow_up")
        cs.do(follow_up["id"], {"contact_result": "resolved", "notes": "已致歉并补发赠品"})
        done = cs.wait_for_state(started["id"], "completed")
        assert (done["result"]["outcome"], done["result"]["kind"]) == ("refunded", "refund_only")
        # No parcel, no inspection.
        assert {task["step"] for task in done["tasks"]} == {"cs_review", "follow_up"}
        [refund] = refunds_of(started["id"])
        assert float(refund.amount) == 49.0

    def test_faulty_goods_have_no_seven_day_limit_and_the_seller_pays_the_return_shipping(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        long_ago = (date.today() - timedelta(days=40)).isoformat()
        params = return_params(cause="faulty", delivered_on=long_ago, amount=199.0, reason="开线")
        started = cs.start_return(params, business_key=f"RET-{uuid.uuid4().hex[:6]}")
        review = cs.wait_for_task(started["id"], "cs_review")
        policy = cs.get(f"/tasks/{review['id']}").json()["context"]["policy"]
        assert (policy["eligible"], policy["seller_fault"], policy["shipping_paid_by"]) == (True, True, "seller")
        cs.do(review["id"], {"decision": "approve"})
        # Eligible on its own: no goodwill approval is asked.
        parcel = cs.wait_for_task(started["id"], "await_parcel")
        missing = cs.post(f"/tasks/{parcel['id']}/claim")
        assert missing.status_code == 200
        refused = cs.post(f"/tasks/{parcel['id']}/complete", json={"data": {"return_tracking_no": "SF1"}})
        assert [f["field"] for f in refused.json()["fields"]] == ["return_shipping_cost"]  # always recorded
        done_parcel = cs.post(
            f"/tasks/{parcel['id']}/complete", json={"data": {"return_tracking_no": "SF1", "return_shipping_cost": 15}}
        )
        assert done_parcel.status_code == 200, done_parcel.text
        warehouse.do(warehouse.wait_for_task(started["id"], "inspect")["id"], {"condition": "ok", "restock": "yes"})

        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["return_shipping"] == {"cost": "15", "paid_by": "seller", "refunded": "15"}
        [refund] = refunds_of(started["id"])
        assert float(refund.amount) == 214.0  # the goods and the return shipping the seller owes

    def test_sealed_digital_goods_are_eligible_and_opened_ones_are_not(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs = team["cs"]
        for opened, eligible in ((False, True), (True, False)):
            params = return_params(category="digital", opened=opened)
            started = cs.start_return(params, business_key=f"RET-{uuid.uuid4().hex[:6]}")
            review = cs.wait_for_task(started["id"], "cs_review")
            assert cs.get(f"/tasks/{review['id']}").json()["context"]["policy"]["eligible"] is eligible


class TestParcelNeverArrives:
    def test_timer_closes_the_case(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        started = cs.start_return(return_params(), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        review = cs.wait_for_task(started["id"], "cs_review")
        cs.do(review["id"], {"decision": "approve"})
        parcel = cs.wait_for_task(started["id"], "await_parcel")
        created = cs.get(f"/tasks/{parcel['id']}").json()["created_at"]

        # The sweep is global: other tests' parcels may expire too, so look at this one.
        sweep_once(now=datetime.fromisoformat(created) + timedelta(days=6, hours=23))
        assert cs.get(f"/tasks/{parcel['id']}").json()["state"] == "open"
        assert sweep_once(now=datetime.fromisoformat(created) + timedelta(days=7, minutes=1)).expired >= 1
        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "closed_no_parcel"
        assert cs.get(f"/tasks/{parcel['id']}").json()["state"] == "expired"
        with session_scope() as session:
            count = session.scalar(
                select(func.count()).select_from(HumanTask).where(HumanTask.instance_id == started["id"])
            )
        assert count == 2


class TestDamagedReturn:
    def test_deduction_needs_operations_and_a_reject_sends_it_back_to_inspection(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs, warehouse, ops = team["cs"], team["warehouse"], team["ops"]
        started = cs.start_return(return_params(amount=200.0), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        cs.do(cs.wait_for_task(started["id"], "cs_review")["id"], {"decision": "approve"})
        cs.do(
            cs.wait_for_task(started["id"], "await_parcel")["id"],
            {"return_tracking_no": "SF7778889990", "return_shipping_cost": 0},
        )
        warehouse.do(
            warehouse.wait_for_task(started["id"], "inspect")["id"],
            {"condition": "damaged", "restock": "no", "deduction": 50, "notes": "领口污渍"},
        )

        first = ops.wait_for_task(started["id"], "deduction_approval")
        assert ops.get(f"/tasks/{first['id']}").json()["context"]["inspection"]["deduction"] == 50
        ops.do(first["id"], {"decision": "reject", "comment": "扣款过高，请拍照并重新评估"})

        again = warehouse.wait_for_task(started["id"], "inspect", round=2)
        rework = warehouse.get(f"/tasks/{again['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "comment": "扣款过高，请拍照并重新评估", "by": ops.name}
        warehouse.do(again["id"], {"condition": "damaged", "restock": "no", "deduction": 30})
        second = ops.wait_for_task(started["id"], "deduction_approval", round=2)
        ops.do(second["id"], {"decision": "approve", "comment": "同意扣30"})

        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "refunded"
        refunds = refunds_of(started["id"])
        assert len(refunds) == 1
        assert (float(refunds[0].amount), float(refunds[0].deduction)) == (170.0, 30.0)


def seeded_sku(stock: int) -> str:
    code = f"RET-SKU-{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        seed_sku(session, sku=code, title="纯棉圆领T恤", list_price="199", stock=stock)
    return code


def stock_at_the_warehouse(sku: str) -> tuple[int, list[str]]:
    with session_scope() as session:
        on_hand = balance(session, sku=sku, location=ONLINE_WAREHOUSE)["on_hand"]
        kinds = [m.kind for m in session.scalars(select(StockMovement).where(StockMovement.sku == sku))]
    return on_hand, sorted(kinds)


class TestStockMoves:
    def test_a_restocked_return_goes_back_on_the_shelf_once(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        sku = seeded_sku(stock=5)
        started = cs.start_return(return_params(sku=sku, quantity=2), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        cs.do(cs.wait_for_task(started["id"], "cs_review")["id"], {"decision": "approve", "comment": "符合"})
        parcel = cs.wait_for_task(started["id"], "await_parcel")
        cs.do(parcel["id"], {"return_tracking_no": "SF1234567890", "carrier": "SF", "return_shipping_cost": 10})
        warehouse.do(warehouse.wait_for_task(started["id"], "inspect")["id"], {"condition": "ok", "restock": "yes"})

        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["stock"]["restock"]["moved"] is True
        assert stock_at_the_warehouse(sku) == (7, ["adjust", "restock"])

    def test_an_exchange_sends_the_replacement_out_of_stock(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        sku = seeded_sku(stock=5)
        started = cs.start_return(return_params(sku=sku, kind="exchange"), business_key=f"RET-{uuid.uuid4().hex[:6]}")
        cs.do(cs.wait_for_task(started["id"], "cs_review")["id"], {"decision": "approve", "comment": "换尺码"})
        parcel = cs.wait_for_task(started["id"], "await_parcel")
        cs.do(parcel["id"], {"return_tracking_no": "SF1234567891", "carrier": "SF", "return_shipping_cost": 10})
        # Not restocked (worn): only the replacement moves.
        warehouse.do(warehouse.wait_for_task(started["id"], "inspect")["id"], {"condition": "ok", "restock": "no"})
        reship = warehouse.wait_for_task(started["id"], "reship")
        warehouse.do(reship["id"], {"carrier": "SF", "tracking_no": "SF9876543210"})

        done = cs.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "reshipped"
        assert stock_at_the_warehouse(sku) == (4, ["adjust", "exchange_out"])
