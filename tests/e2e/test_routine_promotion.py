"""The weekly routine promotion: review, plan, budget approval by threshold, report; and its Monday schedule."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.instances.lifecycle import find_instance_of_run
from tests.e2e.conftest import Stack, Staff, prefect_api, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "routine_promotion"


def plan(budget: float, **overrides: Any) -> dict[str, Any]:
    data = {
        "seo_title_changes": [{"sku": "SKU-TEE-001", "new_title": "纯棉短袖T恤 夏季新款 透气舒适"}],
        "affiliate_commission_changes": [{"sku": "SKU-TEE-001", "commission_rate": 0.15}],
        "ppc_keyword_changes": [{"keyword": "纯棉T恤", "action": "raise_bid", "bid": 1.8}],
        "ppc_daily_budget": 3000,
        "budget": budget,
        "notes": "主推夏季T恤",
    }
    data.update(overrides)
    return data


def start_week(promotion: Staff, week_of: str = "2025-12-01") -> str:
    return promotion.start(PROCESS, {"week_of": week_of}, business_key=f"WEEK-{uuid.uuid4().hex[:8]}")["id"]


def prefect_call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """Call the Prefect API, retrying while its own database is busy (it answers 503 then)."""

    response = prefect_api(method, path, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def read_deployment() -> dict[str, Any]:
    return prefect_call("GET", f"/deployments/name/{PROCESS}/ecomflow")


def open_steps(staff: Staff, instance_id: str) -> list[tuple[str, int]]:
    return sorted(
        (t["step"], t["round"]) for t in staff.instance(instance_id)["tasks"] if t["state"] in ("open", "claimed")
    )


def report(promotion: Staff, instance_id: str) -> dict[str, Any]:
    task = promotion.wait_for_task(instance_id, "execute_and_report")
    promotion.do(
        task["id"], {"actions_done": "已调整标题、佣金和关键词出价", "results": "点击率提升0.4个百分点", "spend": 28000}
    )
    return promotion.wait_for_state(instance_id, "completed")


class TestBudgetApprover:
    def test_budget_of_30000_goes_to_operations(self, team: dict[str, Staff]) -> None:
        promotion, ops = team["promotion"], team["ops"]
        instance_id = start_week(promotion)
        task = promotion.wait_for_task(instance_id, "plan_actions")
        review = promotion.get(f"/tasks/{task['id']}").json()["context"]["weekly_review"]
        assert review["week"] == "2025-W48"
        assert review["figures"]["period"]["start"] == "2025-11-24T00:00:00+08:00"
        assert review["figures"]["period"]["end"] == "2025-12-01T00:00:00+08:00"
        promotion.do(task["id"], plan(30000))

        approval = ops.wait_for_task(instance_id, "budget_approval")
        assert open_steps(ops, instance_id) == [("budget_approval", 1)]
        assert ops.get(f"/tasks/{approval['id']}").json()["role"] == "operations"
        ops.do(approval["id"], {"decision": "approve", "comment": "同意"})

        done = report(promotion, instance_id)
        assert done["result"]["outcome"] == "reported"
        assert (done["result"]["budget"], done["result"]["approved_by"]) == (30000, ops.name)
        assert all(t["step"] != "owner_budget_approval" for t in done["tasks"])

    def test_budget_of_80000_goes_to_the_owner(self, team: dict[str, Staff]) -> None:
        promotion, owner = team["promotion"], team["owner"]
        instance_id = start_week(promotion)
        promotion.do(promotion.wait_for_task(instance_id, "plan_actions")["id"], plan(80000))

        approval = owner.wait_for_task(instance_id, "owner_budget_approval")
        assert open_steps(owner, instance_id) == [("owner_budget_approval", 1)]
        owner.do(approval["id"], {"decision": "approve", "comment": "双十二前加大投入"})

        done = report(promotion, instance_id)
        assert done["result"]["approved_by"] == owner.name
        assert all(t["step"] != "budget_approval" for t in done["tasks"])


class TestRejectLoop:
    def test_reject_sends_the_plan_back_and_the_new_budget_picks_the_approver(self, team: dict[str, Staff]) -> None:
        promotion, ops, owner = team["promotion"], team["ops"], team["owner"]
        instance_id = start_week(promotion)
        promotion.do(promotion.wait_for_task(instance_id, "plan_actions")["id"], plan(40000))
        ops.do(
            ops.wait_for_task(instance_id, "budget_approval")["id"],
            {"decision": "reject", "comment": "关键词太少，预算可以更大"},
        )

        again = promotion.wait_for_task(instance_id, "plan_actions", round=2)
        context = promotion.get(f"/tasks/{again['id']}").json()["context"]
        assert context["rework"] == {"round": 1, "comment": "关键词太少，预算可以更大", "by": ops.name}
        assert context["previous_plan"]["budget"] == 40000
        promotion.do(again["id"], plan(60000))

        owner.do(owner.wait_for_task(instance_id, "owner_budget_approval", round=2)["id"], {"decision": "approve"})
        done = report(promotion, instance_id)
        assert (done["result"]["rounds"], done["result"]["budget"]) == (2, 60000)


class TestNewTitles:
    """A new SEO title passes the checks a listing title does: 60 bytes in the form, the advertising law after."""

    def test_a_long_title_is_refused_by_the_form_and_a_banned_term_sends_the_plan_back(
        self, team: dict[str, Staff]
    ) -> None:
        promotion, ops = team["promotion"], team["ops"]
        instance_id = start_week(promotion)
        task = promotion.wait_for_task(instance_id, "plan_actions")
        assert promotion.post(f"/tasks/{task['id']}/claim").status_code == 200
        long = plan(20000, seo_title_changes=[{"sku": "SKU-TEE-001", "new_title": "棉" * 31}])
        refused = promotion.post(f"/tasks/{task['id']}/complete", json={"data": long})
        assert refused.status_code == 422
        assert [(f["field"], f["rule"]) for f in refused.json()["fields"]] == [
            ("seo_title_changes[0].new_title", "max_bytes")
        ]

        banned = plan(
            20000,
            seo_title_changes=[
                {"sku": "SKU-TEE-001", "new_title": "纯棉短袖T恤"},
                {"sku": "SKU-TEE-002", "new_title": "全网最低价 纯棉T恤"},
            ],
        )
        assert promotion.post(f"/tasks/{task['id']}/complete", json={"data": banned}).status_code == 200
        again = promotion.wait_for_task(instance_id, "plan_actions", round=2)
        context = promotion.get(f"/tasks/{again['id']}").json()["context"]
        assert {(f["field"], f["rule"]) for f in context["findings"]} == {("seo_title_changes[1].new_title", "ad_law")}
        assert {"最", "全网最低"} <= {f["message"].split("'")[1] for f in context["findings"]}
        assert ops._open_task(instance_id, "budget_approval", 1) is None  # the approver never saw the bad plan

        promotion.do(again["id"], plan(20000))
        ops.do(ops.wait_for_task(instance_id, "budget_approval", round=2)["id"], {"decision": "approve"})
        assert report(promotion, instance_id)["result"]["rounds"] == 2


class TestSchedule:
    def test_deployment_runs_mondays_at_nine_in_shanghai(self, stack: Stack) -> None:
        schedules = [s["schedule"] for s in read_deployment()["schedules"]]
        assert [(s["cron"], s["timezone"]) for s in schedules] == [("0 9 * * 1", "Asia/Shanghai")]

    def test_scheduled_run_starts_its_own_instance_keyed_by_the_iso_week(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        promotion, ops = team["promotion"], team["ops"]
        deployment = read_deployment()
        # Monday 2025-12-01 09:00 in Shanghai, as the schedule would have made it.
        body = {
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2025-12-01T01:00:00Z"}},
            "idempotency_key": f"test-schedule-{uuid.uuid4().hex}",
        }
        flow_run_id = prefect_call("POST", f"/deployments/{deployment['id']}/create_flow_run", json=body)["id"]

        def instance_of_run() -> str | None:
            with session_scope() as session:
                found = find_instance_of_run(session, flow_run_id=flow_run_id)
                return found.id if found else None

        instance_id = wait_until(instance_of_run, timeout=60, what="the scheduled run to start its instance")
        instance = ops.instance(instance_id)  # a manager sees every instance
        assert instance["business_key"] == "2025-W49"
        assert instance["params"] == {"week_of": "2025-12-01"}
        task = promotion.wait_for_task(instance_id, "plan_actions")
        assert promotion.get(f"/tasks/{task['id']}").json()["context"]["weekly_review"]["week"] == "2025-W48"
