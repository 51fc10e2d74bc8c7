"""首页/详情页设计: the owner signs off the homepage only, and a page goes live at its slot."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ecomflow.engine.sla.sweeper import sweep_once
from tests.e2e.conftest import Stack, Staff, wait_until
from tests.e2e.records import catalog_entries, go_live_timer
from tests.e2e.uploads import page_design_form

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def peak_slot(days_ahead: int = 2) -> datetime:
    """Return 10:00 Shanghai time a few days ahead: far enough that the background sweeper leaves it alone."""
    day = datetime.now(SHANGHAI).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)


def brief(page: str, **overrides: Any) -> dict[str, Any]:
    form = {
        "page": page,
        "audience": "25-40岁女性，注重品质",
        "key_message": "夏季清凉上新",
        "go_live_at": peak_slot().isoformat(),
    }
    form.update(overrides)
    return form


def go_live(staff: Staff, instance_id: str) -> dict[str, Any]:
    """Wait for the go-live timer; show nothing is published before the slot, then fire it."""
    timer = wait_until(lambda: go_live_timer(instance_id), timeout=60, what="the go-live timer")
    assert timer.fire_at == peak_slot() and timer.fired_at is None
    sweep_once(now=peak_slot() - timedelta(minutes=1))
    staff.wait_for_state(instance_id, "waiting")  # the run suspends just after arming the timer
    assert go_live_timer(instance_id).fired_at is None and catalog_entries(instance_id) == []
    assert sweep_once(now=peak_slot() + timedelta(minutes=1)).timers_fired >= 1
    return staff.wait_for_state(instance_id, "completed")


class TestHomepage:
    def test_homepage_needs_the_owner_whose_reject_sends_it_back_to_design(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        ops, ops2, owner, visual, visual2 = team["ops"], team["ops2"], team["owner"], team["visual"], team["visual2"]
        started = ops.start("page_design", {"page": "homepage"}, f"PAGE-{uuid.uuid4().hex[:6]}")
        iid = started["id"]
        ops.do(ops.wait_for_task(iid, "brief")["id"], brief("homepage"))

        design = visual.wait_for_task(iid, "design")
        context = visual.get(f"/tasks/{design['id']}").json()["context"]
        assert context["brief"]["key_message"] == "夏季清凉上新" and context["in_peak_hours"] is True
        visual.do(design["id"], page_design_form(visual, 1))
        ops2.do(ops2.wait_for_task(iid, "review")["id"], {"decision": "approve", "comment": "运营通过"})
        signoff = owner.wait_for_task(iid, "owner_signoff")
        assert owner.get(f"/tasks/{signoff['id']}").json()["context"]["review"] == {
            "by": ops2.name,
            "comment": "运营通过",
        }
        owner.do(signoff["id"], {"decision": "reject", "comment": "主视觉换成新品"})

        redesign = visual2.wait_for_task(iid, "design", round=2)
        rework = visual2.get(f"/tasks/{redesign['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "step": "owner_signoff", "comment": "主视觉换成新品", "by": owner.name}
        second = page_design_form(visual2, 2)
        visual2.do(redesign["id"], second)
        ops2.do(ops2.wait_for_task(iid, "review", round=2)["id"], {"decision": "approve"})
        owner.do(owner.wait_for_task(iid, "owner_signoff", round=2)["id"], {"decision": "approve"})

        done = go_live(ops, iid)
        assert done["result"]["outcome"] == "published"
        [entry] = catalog_entries(iid)
        assert (entry.kind, entry.ref) == ("homepage", "homepage")
        assert entry.content["design"]["design_file"] == second["design_file"]
        assert owner.get(f"/attachments/{second['previews'][0]}/thumbnail").status_code == 200


class TestDetailPage:
    def test_detail_page_needs_its_sku_and_no_owner(self, stack: Stack, team: dict[str, Staff]) -> None:
        ops, ops2, visual = team["ops"], team["ops2"], team["visual"]
        sku = f"SKU-{uuid.uuid4().hex[:8]}"
        started = ops.start("page_design", {"page": "detail"}, f"PAGE-{uuid.uuid4().hex[:6]}")
        iid = started["id"]
        # A naive slot is calendar (Asia/Shanghai) time.
        local = peak_slot().replace(tzinfo=None).isoformat()
        # Page copy passes the advertising-law check, as listings do: every finding comes back at once.
        ops.do(ops.wait_for_task(iid, "brief")["id"], brief("detail", go_live_at=local, key_message="全网最低价"))
        again = ops.wait_for_task(iid, "brief", round=2)
        findings = ops.get(f"/tasks/{again['id']}").json()["context"]["findings"]
        assert [f["rule"] for f in findings] == ["required_for_detail", "ad_law", "ad_law"]
        assert {f["field"] for f in findings[1:]} == {"key_message"}
        ops.do(again["id"], brief("detail", sku=sku, go_live_at=local))

        visual.do(visual.wait_for_task(iid, "design")["id"], page_design_form(visual, 1))
        ops2.do(ops2.wait_for_task(iid, "review")["id"], {"decision": "reject", "comment": "尺码表放到首屏"})
        redesign = visual.wait_for_task(iid, "design", round=2)
        rework = visual.get(f"/tasks/{redesign['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "step": "review", "comment": "尺码表放到首屏", "by": ops2.name}
        visual.do(redesign["id"], page_design_form(visual, 2))
        ops2.do(ops2.wait_for_task(iid, "review", round=2)["id"], {"decision": "approve"})

        done = go_live(ops, iid)
        assert "owner_signoff" not in {task["step"] for task in done["tasks"]}
        [entry] = catalog_entries(iid)
        assert (entry.kind, entry.ref) == ("detail_page", sku)
        assert (done["result"]["outcome"], done["result"]["page"], done["result"]["sku"]) == (
            "published",
            "detail",
            sku,
        )
