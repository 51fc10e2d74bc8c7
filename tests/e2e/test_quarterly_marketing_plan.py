"""The quarterly marketing plan over HTTP: figures, owner reject loop, five departments at once, campaign plans."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import KpiTarget, Timer
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.sla.sweeper import sweep_once
from ecomflow.flows.artifacts import artifact_key
from tests.e2e.conftest import Stack, Staff, prefect_api, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "quarterly_marketing_plan"
# Department role → the team member who files its strategy.
DEPARTMENTS = {
    "product": "product",
    "promotion": "promotion",
    "visual": "visual",
    "customer_service": "cs",
    "warehouse": "warehouse",
}


def plan_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "goal_focus": "scale",
        "revenue_target": 900000,
        "margin_target": 0.3,
        "competitor_analysis": "主要竞品在天猫降价15%，京东自营备货充足。",
        "assortment_analysis": "冬季外套占比偏低，需补充爆款。",
        "campaigns": [
            {"theme": "元旦焕新", "starts_on": "2027-01-01", "ends_on": "2027-01-03", "budget": 30000},
            {"theme": "年货节", "starts_on": "2027-01-15", "ends_on": "2027-02-05", "budget": 60000},
        ],
    }
    data.update(overrides)
    return data


def artifacts(key: str) -> list[dict[str, Any]]:
    response = prefect_api("POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}})
    response.raise_for_status()
    return response.json()


def quarter_end_timer(instance_id: str) -> Timer | None:
    with session_scope() as session:
        return session.scalar(
            select(Timer).where(Timer.instance_id == instance_id, Timer.step_key == "await_quarter_end")
        )


def open_strategy_tasks(manager: Staff, instance_id: str) -> list[dict[str, Any]]:
    tasks = manager.instance(instance_id)["tasks"]
    return [t for t in tasks if t["step"] == "department_strategies" and t["state"] == "open"]


class TestQuarterlyPlan:
    def test_plan_goes_from_figures_to_one_campaign_plan_per_campaign(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, owner = team["ops"], team["owner"]
        business_key = f"QMP-{uuid.uuid4().hex[:8]}"
        started = ops.start(PROCESS, {"quarter": "2027-Q1"}, business_key=business_key)

        draft = ops.wait_for_task(started["id"], "draft_plan")
        metrics = ops.get(f"/tasks/{draft['id']}").json()["context"]["metrics"]
        assert metrics["quarter"] == "2027-Q1"
        assert metrics["period"] == {"start": "2026-10-01T00:00:00+08:00", "end": "2027-01-01T00:00:00+08:00"}
        assert metrics["sales"]["quarter"] == "2026-Q4" and "targets" in metrics["sales"]
        assert artifacts(artifact_key(f"{PROCESS}-{business_key}-metrics"))
        ops.do(draft["id"], plan_data())

        first = owner.wait_for_task(started["id"], "owner_approval")
        owner.do(first["id"], {"decision": "reject", "comment": "营收目标太保守，提到100万"})
        again = ops.wait_for_task(started["id"], "draft_plan", round=2)
        context = ops.get(f"/tasks/{again['id']}").json()["context"]
        assert context["rework"] == {"round": 1, "comment": "营收目标太保守，提到100万", "by": owner.name}
        assert context["previous_plan"]["revenue_target"] == 900000
        ops.do(again["id"], plan_data(revenue_target=1000000, goal_focus="profit"))
        owner.do(
            owner.wait_for_task(started["id"], "owner_approval", round=2)["id"],
            {"decision": "approve", "comment": "同意"},
        )

        # All five departments work at the same time: every lane is open before any is done.
        def five_open() -> list[dict[str, Any]] | None:
            found = open_strategy_tasks(ops, started["id"])
            return found if len(found) == 5 else None

        lanes = wait_until(five_open, timeout=60, what="five open department strategy tasks")
        assert {t["role"] for t in lanes} == set(DEPARTMENTS)
        for role, member in DEPARTMENTS.items():
            staff = team[member]
            task = staff.wait_for_task(started["id"], "department_strategies")
            assert task["role"] == role
            targets = staff.get(f"/tasks/{task['id']}").json()["context"]["targets"]
            assert role in {d["department"] for d in targets["departments"]}
            staff.do(
                task["id"],
                {
                    "strategy": f"{role} 策略：聚焦冬季爆款",
                    "key_actions": [{"action": f"{role} 行动一", "due_on": "2027-01-10", "measure": "完成率"}],
                },
            )

        # Version 2: the plan waits for the quarter's end (local midnight on 1 April), then the owner reviews.
        timer = wait_until(lambda: quarter_end_timer(started["id"]), timeout=60, what="the quarter-end timer")
        assert timer.fire_at == datetime(2027, 4, 1, tzinfo=ZoneInfo("Asia/Shanghai")) and timer.fired_at is None
        assert ops.instance(started["id"])["state"] == "waiting"
        with session_scope() as session:
            # Bring only this plan's quarter to its end, so no other test's timer fires early.
            session.execute(update(Timer).where(Timer.id == timer.id).values(fire_at=utcnow() - timedelta(seconds=1)))
        sweep_once(now=utcnow())  # the stack's own sweeper may fire it first: the review task shows it fired
        review = owner.wait_for_task(started["id"], "quarter_review")
        gap = owner.get(f"/tasks/{review['id']}").json()["context"]["review"]
        assert [m["key"] for m in gap["months"]] == ["2027-01", "2027-02", "2027-03"]
        assert (gap["total"]["target"], gap["total"]["actual"]) == ("1000000.00", "0.00")
        assert artifacts(artifact_key(f"{PROCESS}-{business_key}-review"))[0]["type"] == "table"
        owner.do(
            review["id"],
            {
                "assessment": "没有导入订单：实际为零",
                "actions": [{"action": "导入订单报表", "department": "operations"}],
            },
        )

        done = ops.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "reviewed"
        assert done["result"]["rounds"] == 2
        assert done["result"]["approved_by"] == owner.name
        assert (done["result"]["reviewed_by"], done["result"]["actions"]) == (owner.name, 1)

        # Started once each: the replays after every department's task did not start more.
        children = done["children"]
        assert [c["process"] for c in children] == ["themed_campaign_plan", "themed_campaign_plan"]
        assert sorted(c["id"] for c in children) == sorted(done["result"]["campaign_plans"])
        params = sorted((ops.instance(c["id"])["params"] for c in children), key=lambda p: p["starts_on"])
        assert params == plan_data()["campaigns"]

        with session_scope() as session:
            rows = list(session.scalars(select(KpiTarget).where(KpiTarget.plan_instance_id == started["id"])))
        months = {r.key: r.revenue for r in rows if r.scope == "month"}
        departments = {r.key: r.revenue for r in rows if r.scope == "department"}
        assert months == {
            "2027-01": Decimal("300000.00"),
            "2027-02": Decimal("300000.00"),
            "2027-03": Decimal("400000.00"),
        }
        assert set(departments) == set(DEPARTMENTS) and sum(departments.values()) == Decimal("1000000.00")
        assert artifacts(artifact_key(f"{PROCESS}-{business_key}-targets"))[0]["type"] == "table"
        plan = artifacts(artifact_key(f"{PROCESS}-{business_key}-plan"))[0]
        assert plan["type"] == "markdown" and "1000000" in plan["data"]
        assert all(f"{role} 策略：聚焦冬季爆款" in plan["data"] for role in DEPARTMENTS)

        for child in children:
            assert ops.post(f"/instances/{child['id']}/cancel", json={"reason": "test over"}).status_code == 200


class TestSchedule:
    def test_deployment_runs_on_the_first_day_of_each_quarter_in_shanghai(self, stack: Stack) -> None:
        response = prefect_api("GET", f"/deployments/name/{PROCESS}/ecomflow")
        assert response.status_code == 200, response.text
        schedules = response.json()["schedules"]
        assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in schedules] == [
            ("0 9 1 1,4,7,10 *", "Asia/Shanghai")
        ]
        assert all(s["active"] for s in schedules)

    def test_scheduled_run_starts_its_own_instance_for_the_quarter_it_opens(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops = team["ops"]
        deployment = prefect_api("GET", f"/deployments/name/{PROCESS}/ecomflow").json()
        # As the scheduler would create it: no parameters, scheduled for 09:00 on 1 July in Shanghai.
        created = prefect_api(
            "POST",
            f"/deployments/{deployment['id']}/create_flow_run",
            json={
                "parameters": {},
                "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2026-07-01T01:00:00Z"}},
            },
        )
        assert created.status_code == 201, created.text
        flow_run_id = created.json()["id"]

        def instance_of_run() -> dict[str, Any] | None:
            items = ops.get("/instances", params={"process": PROCESS, "limit": 200}).json()["items"]
            return next((i for i in items if i["flow_run_id"] == flow_run_id), None)

        instance = wait_until(instance_of_run, timeout=60, what="the scheduled run's instance")
        assert instance["business_key"] == "2026-Q3"
        assert instance["params"] == {"quarter": "2026-Q3"}
        draft = ops.wait_for_task(instance["id"], "draft_plan")
        metrics = ops.get(f"/tasks/{draft['id']}").json()["context"]["metrics"]
        assert metrics["period"] == {"start": "2026-04-01T00:00:00+08:00", "end": "2026-07-01T00:00:00+08:00"}
        assert ops.post(f"/instances/{instance['id']}/cancel", json={"reason": "test over"}).status_code == 200
