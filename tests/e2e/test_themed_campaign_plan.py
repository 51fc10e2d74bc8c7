"""A themed campaign over HTTP: price policy, owner approval only when needed, four-eyes, children."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import Campaign
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.inventory import upsert_sku
from ecomflow.flows.artifacts import artifact_key
from tests.e2e.conftest import Stack, Staff, prefect_api

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "themed_campaign_plan"


def make_sku(*, offline_price: str = "100", policy: str = "flexible") -> str:
    code = f"SKU-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        upsert_sku(
            session,
            sku=code,
            name="羊绒围巾",
            online_price=Decimal(offline_price),
            offline_price=Decimal(offline_price),
            stock=50,
            price_policy=policy,
        )
    return code


def campaign_data(
    sku: str, *, online_price: float, budget: float = 20000, creatives: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "theme": "双12暖冬",
        "starts_on": "2026-12-10",
        "ends_on": "2026-12-12",
        "audience": {"gender": "female", "age_min": 25, "age_max": 40},
        "channels": ["tmall", "offline_store"],
        "skus": [{"sku": sku, "online_price": online_price, "offline_price": 100}],
        "budget": budget,
        "creatives": creatives or [],
    }


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


class TestCopyCheck:
    def test_a_banned_term_in_the_theme_or_a_creatives_copy_goes_back_to_the_draft(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops = team["ops"]
        sku = make_sku()
        instance_id = start(ops)["id"]
        bad_copy = [{**CREATIVES[0], "copy": "史无前例的暖冬好价"}, CREATIVES[1]]
        data = {**campaign_data(sku, online_price=95, creatives=bad_copy), "theme": "双12 全网最低"}
        ops.do(ops.wait_for_task(instance_id, "draft_campaign")["id"], data)

        again = ops.wait_for_task(instance_id, "draft_campaign", round=2)
        findings = ops.get(f"/tasks/{again['id']}").json()["context"]["findings"]
        assert {(f["field"], f["rule"]) for f in findings} == {("theme", "ad_law"), ("creatives[0].copy", "ad_law")}
        assert ("draft_campaign", 2) in steps_of(ops, instance_id)
        assert not any(step != "draft_campaign" for step, _ in steps_of(ops, instance_id))  # nobody approved it
        ops.do(again["id"], campaign_data(sku, online_price=95))
        team["ops2"].wait_for_task(instance_id, "campaign_approval", round=2)  # four-eyes: not the author
        assert ops.post(f"/instances/{instance_id}/cancel", json={"reason": "test over"}).status_code == 200


class TestFlexiblePriceOverTheLimit:
    def test_25_percent_needs_the_owner_and_15_percent_does_not(self, stack: Stack, team: dict[str, Staff]) -> None:
        ops, ops2, owner = team["ops"], team["ops2"], team["owner"]
        sku = make_sku(policy="flexible")
        started = start(ops)

        ops.do(
            ops.wait_for_task(started["id"], "draft_campaign")["id"],
            campaign_data(sku, online_price=75, creatives=CREATIVES),
        )
        owner_task = owner.wait_for_task(started["id"], "owner_price_approval")
        check = owner.get(f"/tasks/{owner_task['id']}").json()["context"]["price_check"]
        assert [(v["sku"], v["policy"], Decimal(v["discount"])) for v in check["violations"]] == [
            (sku, "flexible", Decimal("0.25"))
        ]
        assert check["budget_approver"] == "operations"
        table = prefect_api(
            "POST",
            "/artifacts/filter",
            json={
                "artifacts": {
                    "key": {"any_": [artifact_key(f"{PROCESS}-{started['business_key']}-price-policy-round-1")]}
                }
            },
        ).json()
        assert table and table[0]["type"] == "table"
        owner.do(owner_task["id"], {"decision": "reject", "comment": "线上折扣不得超过20%"})

        again = ops.wait_for_task(started["id"], "draft_campaign", round=2)
        rework = ops.get(f"/tasks/{again['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "comment": "线上折扣不得超过20%", "by": owner.name}
        ops.do(again["id"], campaign_data(sku, online_price=85, creatives=CREATIVES))

        # 15% is within the flexible policy and the budget is below the threshold: operations alone decides.
        approval = ops2.wait_for_task(started["id"], "campaign_approval", round=2)
        assert ("owner_price_approval", 2) not in steps_of(ops, started["id"])
        assert ops2.get(f"/tasks/{approval['id']}").json()["context"]["price_check"]["violations"] == []
        refused = ops.post(f"/tasks/{approval['id']}/claim")
        assert refused.status_code == 409 and refused.json()["error"] == "FourEyesViolation"
        ops2.do(approval["id"], {"decision": "approve", "comment": "同意"})

        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "approved"
        assert done["result"]["approvals"] == {"operations": ops2.name}
        children = done["children"]
        assert sorted(c["process"] for c in children) == ["ads_and_events", "promo_image_design", "promo_image_design"]
        by_process = {c["process"]: c for c in children}
        ads_params = ops.instance(by_process["ads_and_events"]["id"])["params"]
        assert ads_params == {"campaign": "双12暖冬", "skus": [sku], "budget": 20000}
        promo_params = sorted(
            (ops.instance(c["id"])["params"] for c in children if c["process"] == "promo_image_design"),
            key=lambda p: p["deadline"],
        )
        assert promo_params == [{"campaign": "双12暖冬", **CREATIVES[0]}, {"campaign": "双12暖冬", **CREATIVES[1]}]
        with session_scope() as session:
            campaign = session.scalar(select(Campaign).where(Campaign.instance_id == started["id"]))
            assert (campaign.theme, campaign.budget) == ("双12暖冬", Decimal("20000.00"))
        cancel_children(ops, children)


class TestBudgetAboveThreshold:
    def test_big_budget_needs_the_owner_and_an_operations_reject_goes_back_to_the_draft(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, ops2, owner = team["ops"], team["ops2"], team["owner"]
        sku = make_sku(policy="flexible")
        started = start(ops, budget=80000)

        ops.do(
            ops.wait_for_task(started["id"], "draft_campaign")["id"], campaign_data(sku, online_price=90, budget=80000)
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
        ops.do(again["id"], campaign_data(sku, online_price=90, budget=50000))
        second = ops2.wait_for_task(started["id"], "campaign_approval", round=2)
        assert ("owner_price_approval", 2) not in steps_of(ops, started["id"])
        ops2.do(second["id"], {"decision": "approve"})

        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["rounds"] == 2
        assert [c["process"] for c in done["children"]] == ["ads_and_events"]
        cancel_children(ops, done["children"])


class TestUnifiedSkuPolicy:
    def test_a_sku_with_the_unified_policy_may_not_go_below_offline(self, stack: Stack, team: dict[str, Staff]) -> None:
        ops, ops2, owner = team["ops"], team["ops2"], team["owner"]
        sku = make_sku(policy="unified")
        started = start(ops)

        ops.do(ops.wait_for_task(started["id"], "draft_campaign")["id"], campaign_data(sku, online_price=95))
        owner_task = owner.wait_for_task(started["id"], "owner_price_approval")
        violations = owner.get(f"/tasks/{owner_task['id']}").json()["context"]["price_check"]["violations"]
        assert [(v["sku"], v["policy"]) for v in violations] == [(sku, "unified")]
        owner.do(owner_task["id"], {"decision": "approve", "comment": "清仓特批"})
        ops2.do(ops2.wait_for_task(started["id"], "campaign_approval")["id"], {"decision": "approve"})

        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["approvals"] == {"owner": owner.name, "operations": ops2.name}
        cancel_children(ops, done["children"])
