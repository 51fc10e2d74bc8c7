"""A themed campaign over HTTP on real master data: the price rule, perks, owner approval only when needed.

同一定价: a campaign price below the list price goes to the owner, who approves it with a reason; the
red line (20 %) is refused back to the draft; an online-only product is free of the rule; perks
(free shipping, a gift taken from stock, coupons within the budget) are saved with the campaign.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import Campaign, PriceDeviation
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, balance
from ecomflow.flows.artifacts import artifact_key
from tests.e2e.conftest import Stack, Staff, prefect_api

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "themed_campaign_plan"


def make_sku(*, list_price: str = "100", online_only: bool = False, stock: int = 50) -> str:
    code = f"SKU-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        seed_sku(
            session, sku=code, title="羊绒围巾", list_price=Decimal(list_price), stock=stock, online_only=online_only
        )
    return code


def campaign_data(
    sku: str,
    *,
    online_price: float,
    budget: float = 20000,
    creatives: list[dict[str, Any]] | None = None,
    perks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data = {
        "theme": "双12暖冬",
        "starts_on": "2026-12-10",
        "ends_on": "2026-12-12",
        "audience": {"gender": "female", "age_min": 25, "age_max": 40},
        "channels": ["tmall", "offline_store"],
        "skus": [{"sku": sku, "online_price": online_price}],
        "budget": budget,
        "creatives": creatives or [],
    }
    return data | ({"perks": perks} if perks else {})


CREATIVES = [
    {"purpose": "直通车主图", "sizes": ["800x800"], "copy": "暖冬好价", "deadline": "2026-12-05"},
    {"purpose": "钻展横幅", "sizes": ["1920x600", "750x390"], "deadline": "2026-12-06"},
]


def start(ops: Staff, budget: float = 20000) -> dict[str, Any]:
    params = {"theme": "双12暖冬", "starts_on": "2026-12-10", "ends_on": "2026-12-12", "budget": budget}
    return ops.start(PROCESS, params, business_key=f"TCP-{uuid.uuid4().hex[:8]}")


def steps_of(staff: Staff, instance_id: str) -> list[tuple[str, int]]:
    return [(t["step"], t["round"]) for t in staff.instance(instance_id)["tasks"]]


def cancel_children(ops: Staff, children: list[dict[str, Any]]) -> None:
    for child in children:
        assert ops.post(f"/instances/{child['id']}/cancel", json={"reason": "test over"}).status_code == 200


class TestPriceRuleOnMasterData:
    def test_the_red_line_is_refused_and_a_deviation_goes_to_the_owner_with_a_reason(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, ops2, owner = team["ops"], team["ops2"], team["owner"]
        sku = make_sku(list_price="100")
        started = start(ops)

        # 25 % below the list price: beyond the red line, refused outright, back to the draft; the owner sees nothing.
        ops.do(
            ops.wait_for_task(started["id"], "draft_campaign")["id"],
            campaign_data(sku, online_price=75, creatives=CREATIVES),
        )
        again = ops.wait_for_task(started["id"], "draft_campaign", round=2)
        rework = ops.get(f"/tasks/{again['id']}").json()["context"]["rework"]
        assert [(f["rule"], f["field"]) for f in rework["findings"]] == [("red_line", f"skus.{sku}.online_price")]
        assert "red line and is refused" in rework["findings"][0]["message"]
        assert ("owner_price_approval", 1) not in steps_of(ops, started["id"])

        # 10 % below: a deviation the owner approves, with the reason recorded.
        ops.do(again["id"], campaign_data(sku, online_price=90, creatives=CREATIVES))
        owner_task = owner.wait_for_task(started["id"], "owner_price_approval", round=2)
        check = owner.get(f"/tasks/{owner_task['id']}").json()["context"]["price_check"]
        assert [(d["sku"], d["list_price"], d["price"], d["gap_pct"]) for d in check["deviations"]] == [
            (sku, "100.00", "90", "10.00")
        ]
        table = prefect_api(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {
                    "key": {"any_": [artifact_key(f"{PROCESS}-{started['business_key']}-price-policy-round-2")]}
                }
            },
        ).json()
        assert table and table[0]["type"] == "table"
        owner.do(owner_task["id"], {"decision": "approve", "reason": "清仓特批：旧款换季"})
        approval = ops2.wait_for_task(started["id"], "campaign_approval", round=2)
        refused = ops.post(f"/tasks/{approval['id']}/claim")
        assert refused.status_code == 409 and refused.json()["error"] == "FourEyesViolation"
        ops2.do(approval["id"], {"decision": "approve", "comment": "同意"})

        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["approvals"] == {
            "owner": owner.name,
            "price_reason": "清仓特批：旧款换季",
            "operations": ops2.name,
        }
        with session_scope() as session:
            deviation = session.scalar(select(PriceDeviation).where(PriceDeviation.instance_id == started["id"]))
            assert (deviation.sku, deviation.price, deviation.list_price, deviation.reason, deviation.approved_by) == (
                sku,
                Decimal("90.00"),
                Decimal("100.00"),
                "清仓特批：旧款换季",
                owner.name,
            )
        children = done["children"]
        assert sorted(c["process"] for c in children) == ["ads_and_events", "promo_image_design", "promo_image_design"]
        promo_params = sorted(
            (ops.instance(c["id"])["params"] for c in children if c["process"] == "promo_image_design"),
            key=lambda p: p["deadline"],
        )
        assert promo_params == [{"campaign": "双12暖冬", **CREATIVES[0]}, {"campaign": "双12暖冬", **CREATIVES[1]}]
        cancel_children(ops, children)

    def test_an_owner_approval_without_a_reason_does_not_let_a_deviation_through(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, owner = team["ops"], team["owner"]
        sku = make_sku(list_price="100")
        started = start(ops)
        ops.do(ops.wait_for_task(started["id"], "draft_campaign")["id"], campaign_data(sku, online_price=95))
        owner.do(owner.wait_for_task(started["id"], "owner_price_approval")["id"], {"decision": "approve"})
        again = ops.wait_for_task(started["id"], "draft_campaign", round=2)
        rework = ops.get(f"/tasks/{again['id']}").json()["context"]["rework"]
        assert rework["comment"] == "a price below the list price needs a reason"
        ops.post(f"/instances/{started['id']}/cancel", json={"reason": "test over"})

    def test_the_list_price_with_perks_needs_no_owner_and_the_gift_is_taken_from_stock(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, ops2 = team["ops"], team["ops2"]
        sku, gift = make_sku(list_price="399"), make_sku(list_price="29", stock=50)
        started = start(ops)
        perks = {
            "free_shipping": True,
            "gift": {"sku": gift, "quantity": 10},
            "coupons": [{"threshold": 399, "amount": 40, "expected_uses": 200}],
        }
        ops.do(
            ops.wait_for_task(started["id"], "draft_campaign")["id"],
            campaign_data(sku, online_price=399, perks=perks),
        )
        ops2.do(ops2.wait_for_task(started["id"], "campaign_approval")["id"], {"decision": "approve"})
        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["approvals"] == {"operations": ops2.name}
        assert ("owner_price_approval", 1) not in steps_of(ops, started["id"])
        with session_scope() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.instance_id == started["id"]))
            assert campaign.details["perks"] == {
                "free_shipping": True,
                "gift": {"sku": gift, "quantity": 10},
                "coupons": [{"threshold": "399", "amount": "40", "expected_uses": 200}],
            }
            assert balance(session, sku=gift, location=ONLINE_WAREHOUSE) == {
                "on_hand": 50,
                "reserved": 10,
                "available": 40,
            }
        cancel_children(ops, done["children"])

    def test_coupons_beyond_the_budget_and_an_unknown_gift_are_refused(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops = team["ops"]
        sku = make_sku()
        started = start(ops)
        perks = {"gift": {"sku": "NO-SUCH-GIFT"}, "coupons": [{"threshold": 200, "amount": 50, "expected_uses": 1000}]}
        ops.do(
            ops.wait_for_task(started["id"], "draft_campaign")["id"],
            campaign_data(sku, online_price=100, budget=20000, perks=perks),
        )
        again = ops.wait_for_task(started["id"], "draft_campaign", round=2)
        findings = ops.get(f"/tasks/{again['id']}").json()["context"]["rework"]["findings"]
        assert [(f["field"], f["rule"]) for f in findings] == [
            ("perks.gift.sku", "catalogue_sku"),
            ("perks.coupons", "within_budget"),
        ]
        ops.post(f"/instances/{started['id']}/cancel", json={"reason": "test over"})

    def test_an_online_only_product_is_free_of_the_rule(self, stack: Stack, team: dict[str, Staff]) -> None:
        ops, ops2 = team["ops"], team["ops2"]
        sku = make_sku(list_price="100", online_only=True)
        started = start(ops)
        # Half the list price: no deviation, no red line, for a product the stores never sell.
        ops.do(ops.wait_for_task(started["id"], "draft_campaign")["id"], campaign_data(sku, online_price=50))
        approval = ops2.wait_for_task(started["id"], "campaign_approval")
        check = ops2.get(f"/tasks/{approval['id']}").json()["context"]["price_check"]
        assert [(r["sku"], r["verdict"]) for r in check["rows"]] == [(sku, "exempt")]
        ops2.do(approval["id"], {"decision": "approve"})
        done = ops.wait_for_state(started["id"], "completed")
        assert ("owner_price_approval", 1) not in steps_of(ops, started["id"])
        cancel_children(ops, done["children"])


class TestBudgetAboveThreshold:
    def test_big_budget_needs_the_owner_and_an_operations_reject_goes_back_to_the_draft(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, ops2, owner = team["ops"], team["ops2"], team["owner"]
        sku = make_sku()
        started = start(ops, budget=80000)

        ops.do(
            ops.wait_for_task(started["id"], "draft_campaign")["id"], campaign_data(sku, online_price=100, budget=80000)
        )
        owner_task = owner.wait_for_task(started["id"], "owner_price_approval")
        check = owner.get(f"/tasks/{owner_task['id']}").json()["context"]["price_check"]
        assert check["violations"] == [] and check["budget_approver"] == "owner"
        owner.do(owner_task["id"], {"decision": "approve", "comment": "预算同意"})
        first = ops2.wait_for_task(started["id"], "campaign_approval")
        ops2.do(first["id"], {"decision": "reject", "comment": "人群定位太宽，请收窄"})

        again = ops.wait_for_task(started["id"], "draft_campaign", round=2)
        assert ops.get(f"/tasks/{again['id']}").json()["context"]["rework"]["comment"] == "人群定位太宽，请收窄"
        # Exactly the threshold stays with operations.
        ops.do(again["id"], campaign_data(sku, online_price=100, budget=50000))
        second = ops2.wait_for_task(started["id"], "campaign_approval", round=2)
        assert ("owner_price_approval", 2) not in steps_of(ops, started["id"])
        ops2.do(second["id"], {"decision": "approve"})

        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["rounds"] == 2
        assert [c["process"] for c in done["children"]] == ["ads_and_events"]
        cancel_children(ops, done["children"])
