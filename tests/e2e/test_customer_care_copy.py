"""Care copy drafted, checked (advertising law, SMS rules), reviewed and published into the copy library, over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import CopyEntry
from ecomflow.engine.db.sessions import session_scope
from tests.e2e.conftest import Staff

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "customer_care_copy"
GOOD_SMS = "【小店】亲，您的包裹已发出，预计两天内送达，请注意查收。回T退订"


def start_copy(cs: Staff, scenario: str = "shipped") -> str:
    return cs.start(PROCESS, {"scenario": scenario}, business_key=f"COPY-{uuid.uuid4().hex[:8]}")["id"]


def draft(cs: Staff, instance_id: str, *, round: int, channel: str, text: str, scenario: str = "shipped") -> None:
    task = cs.wait_for_task(instance_id, "draft_copy", round=round)
    cs.do(task["id"], {"scenario": scenario, "channel": channel, "text": text})


def findings_of_round(cs: Staff, instance_id: str, round: int) -> list[dict[str, Any]]:
    task = cs.wait_for_task(instance_id, "draft_copy", round=round)
    return cs.get(f"/tasks/{task['id']}").json()["context"]["findings"]


def approve(ops: Staff, instance_id: str, *, round: int) -> None:
    review = ops.wait_for_task(instance_id, "review", round=round)
    ops.do(review["id"], {"decision": "approve", "comment": "可以发布"})


def library_entries(instance_id: str) -> list[CopyEntry]:
    with session_scope() as session:
        return list(session.scalars(select(CopyEntry).where(CopyEntry.instance_id == instance_id)))


class TestSmsRules:
    def test_sms_without_opt_out_goes_back_with_the_rule_named(self, team: dict[str, Staff]) -> None:
        cs, ops = team["cs"], team["ops"]
        instance_id = start_copy(cs)
        draft(cs, instance_id, round=1, channel="sms", text="【小店】亲，您的包裹已发出，请注意查收。")

        findings = findings_of_round(cs, instance_id, 2)
        assert [(f["rule"], f["field"]) for f in findings] == [("sms", "text")]
        assert "回T退订" in findings[0]["message"]
        assert cs.instance(instance_id)["state"] != "completed"

        draft(cs, instance_id, round=2, channel="sms", text=GOOD_SMS)
        approve(ops, instance_id, round=2)
        done = cs.wait_for_state(instance_id, "completed")
        assert done["result"]["outcome"] == "published"
        assert done["result"]["rounds"] == 2
        assert [(e.channel, e.text) for e in library_entries(instance_id)] == [("sms", GOOD_SMS)]

    def test_sms_over_70_characters_is_refused(self, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        instance_id = start_copy(cs, scenario="holiday")
        long_text = "【小店】" + "节日快乐，感谢您一直以来的支持与陪伴。" * 4 + "回T退订"
        assert len(long_text) > 70
        draft(cs, instance_id, round=1, channel="sms", text=long_text, scenario="holiday")

        findings = findings_of_round(cs, instance_id, 2)
        assert [f["rule"] for f in findings] == ["sms"]
        assert f"SMS is {len(long_text)} characters; the limit is 70" == findings[0]["message"]
        assert library_entries(instance_id) == []

    def test_the_same_text_over_im_has_no_sms_limits(self, team: dict[str, Staff]) -> None:
        cs, ops = team["cs"], team["ops"]
        instance_id = start_copy(cs, scenario="holiday")
        long_text = "节日快乐，感谢您一直以来的支持与陪伴。" * 5
        draft(cs, instance_id, round=1, channel="im", text=long_text, scenario="holiday")
        approve(ops, instance_id, round=1)
        assert cs.wait_for_state(instance_id, "completed")["result"]["rounds"] == 1


class TestAdvertisingLaw:
    def test_banned_term_goes_back_with_term_and_position(self, team: dict[str, Staff]) -> None:
        cs, ops = team["cs"], team["ops"]
        instance_id = start_copy(cs, scenario="vip_care")
        draft(
            cs,
            instance_id,
            round=1,
            channel="im",
            text="尊敬的会员，您是本店第一批VIP，专享顶级服务。",
            scenario="vip_care",
        )

        findings = findings_of_round(cs, instance_id, 2)
        assert [(f["rule"], f["term"], f["position"]) for f in findings] == [
            ("ad_law", "第一", 10),
            ("ad_law", "顶级", 19),
        ]
        assert all(f["field"] == "text" for f in findings)

        draft(
            cs,
            instance_id,
            round=2,
            channel="im",
            text="尊敬的会员，感谢您一直以来的支持，专享会员服务已为您开通。",
            scenario="vip_care",
        )
        approve(ops, instance_id, round=2)
        assert cs.wait_for_state(instance_id, "completed")["result"]["outcome"] == "published"

    def test_an_sms_breaking_every_rule_reports_every_problem(self, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        instance_id = start_copy(cs)
        draft(cs, instance_id, round=1, channel="sms", text="全网最低价！" + "好物推荐" * 20)
        rules = sorted(f["rule"] for f in findings_of_round(cs, instance_id, 2))
        assert rules == ["ad_law", "ad_law", "sms", "sms"]  # 全网最低 and 最, the length and the opt-out


class TestReviewAndPublish:
    def test_passing_im_text_is_published_once_after_a_review_reject(self, team: dict[str, Staff]) -> None:
        cs, ops = team["cs"], team["ops"]
        instance_id = start_copy(cs, scenario="delivered")
        draft(
            cs,
            instance_id,
            round=1,
            channel="im",
            text="亲，您的宝贝已签收，使用中有任何问题随时找我们哦。",
            scenario="delivered",
        )

        review = ops.wait_for_task(instance_id, "review")
        assert ops.get(f"/tasks/{review['id']}").json()["context"]["draft"]["channel"] == "im"
        ops.do(review["id"], {"decision": "reject", "comment": "请加上邀请评价的话术"})

        again = cs.wait_for_task(instance_id, "draft_copy", round=2)
        context = cs.get(f"/tasks/{again['id']}").json()["context"]
        assert context["rework"] == {"round": 1, "comment": "请加上邀请评价的话术", "by": ops.name}
        assert "findings" not in context
        text = "亲，您的宝贝已签收，满意的话请给我们五星好评，有任何问题随时找我们哦。"
        cs.do(again["id"], {"scenario": "delivered", "channel": "im", "text": text})
        approve(ops, instance_id, round=2)

        done = cs.wait_for_state(instance_id, "completed")
        assert done["result"]["outcome"] == "published"
        entries = library_entries(instance_id)
        assert len(entries) == 1
        assert (entries[0].scenario, entries[0].channel, entries[0].text) == ("delivered", "im", text)
        assert done["result"]["copy_id"] == entries[0].id
