"""Ads and events over HTTP: budget by threshold, daily reminders, the event's end, the effect."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent, Campaign, PriceDeviation, Timer
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.sla.sweeper import sweep_once
from tests.e2e.conftest import Stack, Staff, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "ads_and_events"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def selection(*, budget: float, ends_on: date) -> dict[str, Any]:
    return {
        "platform": "tmall",
        "channel": "platform_event",
        "event": "天猫双12",
        "signup_deadline": datetime.combine(ends_on - timedelta(days=3), time(18), tzinfo=SHANGHAI).isoformat(),
        "event_starts_on": (ends_on - timedelta(days=1)).isoformat(),
        "event_ends_on": ends_on.isoformat(),
        "candidate_skus": ["SKU-SCARF-01", "SKU-COAT-02"],
        "budget": budget,
        "rationale": "围巾转化率高",
    }


def start(promotion: Staff, budget: float) -> dict[str, Any]:
    params = {"campaign": "双12暖冬", "skus": ["SKU-SCARF-01", "SKU-COAT-02"], "budget": budget}
    return promotion.start(PROCESS, params, business_key=f"ADS-{uuid.uuid4().hex[:8]}")


def reminders_of(task_id: str) -> list[AuditEvent]:
    with session_scope() as session:
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.type == "task.reminded"))
        )


def timer_of(instance_id: str) -> Timer | None:
    with session_scope() as session:
        return session.scalar(
            select(Timer).where(Timer.instance_id == instance_id, Timer.step_key == "await_event_end")
        )


class TestApprovedEvent:
    def test_operations_budget_reminders_event_end_and_effect(self, stack: Stack, team: dict[str, Staff]) -> None:
        promotion, ops = team["promotion"], team["ops"]
        ends_on = datetime.now(SHANGHAI).date() + timedelta(days=1)
        started = start(promotion, 30000)

        promotion.do(
            promotion.wait_for_task(started["id"], "select_products")["id"], selection(budget=30000, ends_on=ends_on)
        )
        first = ops.wait_for_task(started["id"], "budget_approval")
        ops.do(first["id"], {"decision": "reject", "comment": "预算偏高，压到2万"})
        again = promotion.wait_for_task(started["id"], "select_products", round=2)
        rework = promotion.get(f"/tasks/{again['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "comment": "预算偏高，压到2万", "by": ops.name}
        promotion.do(again["id"], selection(budget=20000, ends_on=ends_on))
        ops.do(ops.wait_for_task(started["id"], "budget_approval", round=2)["id"], {"decision": "approve"})

        promotion.do(
            promotion.wait_for_task(started["id"], "sign_up")["id"], {"platform_reference": "TM-2026-1212-889"}
        )
        review = promotion.wait_for_task(started["id"], "review_result")
        created = datetime.fromisoformat(review["created_at"])
        sweep_once(now=created + timedelta(hours=23))
        assert reminders_of(review["id"]) == []
        sweep_once(now=created + timedelta(days=1, minutes=1))
        assert len(reminders_of(review["id"])) == 1
        assert "task.reminded" in {e["type"] for e in promotion.instance(started["id"])["history"]}
        promotion.do(review["id"], {"result": "approved"})

        # Waiting for the end of the event's last day in Shanghai; nothing to track before.
        timer = wait_until(lambda: timer_of(started["id"]), timeout=60, what="the event-end timer")
        event_end = datetime.combine(ends_on + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        assert timer.fire_at == event_end and timer.fired_at is None
        assert "track_effect" not in {t["step"] for t in promotion.instance(started["id"])["tasks"]}
        assert sweep_once(now=event_end + timedelta(minutes=1)).timers_fired >= 1

        effect = promotion.wait_for_task(started["id"], "track_effect")
        # 3 working days in the team's calendar (weekends and holidays do not count).
        created_at = datetime.fromisoformat(effect["created_at"])
        assert datetime.fromisoformat(effect["due_at"]) == get_definitions().calendar.add(created_at, timedelta(days=3))
        promotion.do(effect["id"], {"gmv": 180000, "spend": 19500, "roi": 9.23, "analysis": "围巾爆发，外套一般"})
        done = promotion.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "tracked"
        assert (done["result"]["rounds"], done["result"]["gmv"]) == (2, 180000)


class TestRejectedByThePlatform:
    def test_owner_approves_a_big_budget_and_a_platform_rejection_ends_it(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        promotion, owner = team["promotion"], team["owner"]
        ends_on = datetime.now(SHANGHAI).date() + timedelta(days=10)
        started = start(promotion, 80000)

        promotion.do(
            promotion.wait_for_task(started["id"], "select_products")["id"], selection(budget=80000, ends_on=ends_on)
        )
        owner.do(
            owner.wait_for_task(started["id"], "owner_budget_approval")["id"],
            {"decision": "approve", "comment": "同意"},
        )
        promotion.do(promotion.wait_for_task(started["id"], "sign_up")["id"], {"platform_reference": "JHS-77812"})
        review = promotion.wait_for_task(started["id"], "review_result")
        promotion.do(review["id"], {"result": "rejected", "notes": "销量不达标"})

        done = promotion.wait_for_state(started["id"], "completed")
        assert done["result"] == {"outcome": "not_accepted", "platform_reference": "JHS-77812", "notes": "销量不达标"}
        steps = {t["step"] for t in owner.instance(started["id"])["tasks"]}  # a manager sees every task
        assert "budget_approval" not in steps and "track_effect" not in steps
        assert timer_of(started["id"]) is None


class TestEventPrices:
    def test_an_event_price_below_list_goes_to_the_owner_and_the_red_line_is_refused(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        promotion, owner = team["promotion"], team["owner"]
        sku = f"SKU-{uuid.uuid4().hex[:8]}"
        with session_scope() as session:
            seed_sku(session, sku=sku, title="羊绒围巾", list_price=Decimal("399"), stock=20)
        ends_on = datetime.now(SHANGHAI).date() + timedelta(days=1)
        started = start(promotion, 10000)
        refused = selection(budget=10000, ends_on=ends_on) | {"event_prices": [{"sku": sku, "event_price": 299}]}
        promotion.do(promotion.wait_for_task(started["id"], "select_products")["id"], refused)
        again = promotion.wait_for_task(started["id"], "select_products", round=2)
        [finding] = promotion.get(f"/tasks/{again['id']}").json()["context"]["rework"]["findings"]
        assert (finding["rule"], finding["field"]) == ("red_line", f"event_prices.{sku}")

        # 聚划算 at 359: 10 % below, the owner's call although the budget is small.
        deviation = selection(budget=10000, ends_on=ends_on) | {
            "event_prices": [{"sku": sku, "event_price": 359}],
            "perks": {"free_shipping": True},
        }
        promotion.do(again["id"], deviation)
        decision = owner.wait_for_task(started["id"], "owner_budget_approval", round=2)
        owner.do(decision["id"], {"decision": "approve", "reason": "聚划算坑位费已付，冲量"})
        promotion.wait_for_task(started["id"], "sign_up")
        with session_scope() as session:
            approved = session.scalar(select(PriceDeviation).where(PriceDeviation.instance_id == started["id"]))
            event = session.scalar(select(Campaign).where(Campaign.instance_id == started["id"]))
        assert (approved.sku, approved.price, approved.reason) == (sku, Decimal("359.00"), "聚划算坑位费已付，冲量")
        assert (event.details["kind"], event.details["perks"]["free_shipping"]) == ("event", True)
        # The event's goods, for its ROI: the candidates as selected, beside the priced ones.
        assert event.details["candidate_skus"] == ["SKU-SCARF-01", "SKU-COAT-02"]
        owner.post(f"/instances/{started['id']}/cancel", json={"reason": "test over"})
