"""Promo images over HTTP: advertising-law check, review reject loop, data feedback that sends it back, archive."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import CatalogEntry
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from tests.e2e.conftest import Stack, Staff
from tests.e2e.records import creatives_of
from tests.e2e.uploads import promo_design

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PROCESS = "promo_image_design"


def request_data(copy: str) -> dict:
    return {
        "campaign": "双12暖冬",
        "purpose": "直通车主图",
        "sizes": ["800x800", "750x1000"],
        "copy": copy,
        "deadline": "2026-12-05",
    }


class TestPromoImages:
    def test_request_to_archive_with_every_loop(self, stack: Stack, team: dict[str, Staff]) -> None:
        promotion, visual = team["promotion"], team["visual"]
        started = promotion.start(
            PROCESS,
            {"campaign": "双12暖冬", "sizes": ["800x800"], "copy": "暖冬好价"},
            business_key=f"PID-{uuid.uuid4().hex[:8]}",
        )

        first = promotion.wait_for_task(started["id"], "request")
        assert promotion.get(f"/tasks/{first['id']}").json()["context"]["params"]["copy"] == "暖冬好价"
        promotion.do(first["id"], request_data("全网最低价，第一品牌"))

        # Every banned term and where it is, 全网最低 and the 最 inside it included.
        again = promotion.wait_for_task(started["id"], "request", round=2)
        findings = promotion.get(f"/tasks/{again['id']}").json()["context"]["findings"]
        assert [(f["field"], f["term"], f["position"]) for f in findings] == [
            ("copy", "全网最低", 0),
            ("copy", "最", 2),
            ("copy", "第一", 6),
        ]
        assert all(f["rule"] == "ad_law" and f["message"] for f in findings)
        promotion.do(again["id"], request_data("暖冬好价，限时8折"))

        design = visual.wait_for_task(started["id"], "design")
        assert visual.get(f"/tasks/{design['id']}").json()["context"]["request"]["copy"] == "暖冬好价，限时8折"
        visual.do(design["id"], promo_design(visual, 1))
        review = promotion.wait_for_task(started["id"], "review")
        promotion.do(review["id"], {"decision": "reject", "comment": "价格字号太小"})

        redesign = visual.wait_for_task(started["id"], "design", round=2)
        rework = visual.get(f"/tasks/{redesign['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "comment": "价格字号太小", "by": promotion.name}
        second = promo_design(visual, 2)
        visual.do(redesign["id"], second)
        review = promotion.get(f"/tasks/{promotion.wait_for_task(started['id'], 'review', round=2)['id']}").json()
        # The reviewer sees what they approve: the images are in the review's context, and download.
        assert review["context"]["design"] == second
        assert promotion.get(f"/attachments/{second['images'][0]['image']}").status_code == 200
        promotion.do(promotion.wait_for_task(started["id"], "review", round=2)["id"], {"decision": "approve"})

        # Live from the approval: the data is due 7 days later; a poor click-through rate sends it back to design.
        feedback = promotion.wait_for_task(started["id"], "performance_feedback", round=2)
        # 7 working days in the team's calendar (weekends and holidays do not count).
        created_at = datetime.fromisoformat(feedback["created_at"])
        assert datetime.fromisoformat(feedback["due_at"]) == get_definitions().calendar.add(
            created_at, timedelta(days=7)
        )
        assert "live_since" in promotion.get(f"/tasks/{feedback['id']}").json()["context"]
        promotion.do(
            feedback["id"],
            {
                "impressions": 20000,
                "clicks": 120,
                "click_through_rate": 0.006,
                "verdict": "optimize",
                "notes": "主体不突出",
            },
        )

        optimize = visual.wait_for_task(started["id"], "design", round=3)
        context = visual.get(f"/tasks/{optimize['id']}").json()["context"]
        assert context["feedback"]["verdict"] == "optimize" and context["feedback"]["notes"] == "主体不突出"
        third = promo_design(visual, 3)
        visual.do(optimize["id"], third)
        promotion.do(promotion.wait_for_task(started["id"], "review", round=3)["id"], {"decision": "approve"})
        keep = promotion.wait_for_task(started["id"], "performance_feedback", round=3)
        # The 直通车 创意ID the images ran as: their CTR in the visual KPI comes from the ad reports by it.
        figures = {"impressions": 21000, "clicks": 630, "click_through_rate": 0.03, "verdict": "keep"}
        promotion.do(keep["id"], figures | {"ad_creative_id": "880001000"})

        done = promotion.wait_for_state(started["id"], "completed")
        assert done["result"]["outcome"] == "archived"
        assert done["result"]["rounds"] == 3
        with session_scope() as session:
            entries = list(session.scalars(select(CatalogEntry).where(CatalogEntry.instance_id == started["id"])))
        assert [(e.kind, e.id) for e in entries] == [("promo_image", done["result"]["catalog_id"])]
        assert entries[0].content["images"] == third
        # 作品建档: the approved images with the figures the feedback recorded, in the design archive.
        [creative] = creatives_of(started["id"])
        assert creative.attachment_ids == [row["image"] for row in third["images"]]
        assert creative.figures == {"impressions": 21000, "clicks": 630, "click_through_rate": 0.03, "verdict": "keep"}
        assert creative.ad_creative_id == "880001000"
