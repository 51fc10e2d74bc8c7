"""宝贝上传: the listing check sends every finding back, and a reviewed listing goes live at its slot."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.pricing import record_deviations
from ecomflow.engine.shop.process_records import save_campaign
from ecomflow.engine.shop.variant_listings import listings_of
from ecomflow.engine.sla.sweeper import sweep_once
from ecomflow.flows.artifacts import artifact_key
from tests.e2e.conftest import Stack, Staff, prefect_api, wait_until
from tests.e2e.records import catalog_entries, go_live_timer
from tests.e2e.uploads import detail_images, listing_images

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def new_sku(*, online_only: bool = False) -> str:
    """Put a SKU with the list price 100 into the catalogue."""
    code = f"SKU-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        seed_sku(session, sku=code, title="纯棉短袖T恤", list_price=Decimal("100"), stock=80, online_only=online_only)
    return code


def peak_slot(days_ahead: int = 2) -> datetime:
    """Return 20:00 Shanghai time a few days ahead: far enough that the background sweeper leaves it alone."""
    day = datetime.now(SHANGHAI).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, 20, 0, tzinfo=SHANGHAI)


def listing_form(images: dict[str, list[str]], sku: str, **overrides: Any) -> dict[str, Any]:
    """Return a listing of the SKU with the product person's uploaded images (main_images, detail_module)."""
    form = {
        "title": "春季新款纯棉短袖T恤男士宽松圆领上衣",
        "category": "男装/T恤",
        "category_attributes": [{"name": "材质", "value": "纯棉"}],
        "shipping_template": "包邮-江浙沪",
        "dispatch_within_hours": 48,
        "price": 100.0,
        "skus": [{"sku": sku, "spec": "白色/L", "stock": 50}],
        **images,
        "go_live_at": peak_slot().replace(tzinfo=None).isoformat(),  # naive: calendar time
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value is not None}  # None: leave the field out


def listing_files(staff: Staff) -> dict[str, list[str]]:
    """Upload five main images (the first on white) and a detail module image as the staff member."""
    return {"main_images": listing_images(staff, 5), "detail_module": detail_images(staff)}


def findings_of(staff: Staff, instance_id: str, round: int) -> list[dict[str, Any]]:
    task = staff.wait_for_task(instance_id, "prepare_listing", round=round)
    return staff.get(f"/tasks/{task['id']}").json()["context"]["findings"]


class TestListingCheck:
    def test_the_form_refuses_what_it_can_state_and_the_check_sends_back_the_rest(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        product, ops = team["product"], team["ops"]
        files = listing_files(product)
        sku, other = new_sku(), new_sku()
        started = product.start(
            "listing_upload", {"sku": sku, "module": f"catalog:module:{sku}"}, f"UP-{uuid.uuid4().hex[:6]}"
        )
        iid = started["id"]
        first = product.wait_for_task(iid, "prepare_listing")
        assert product.post(f"/tasks/{first['id']}/claim").status_code == 200

        # What the form can say it says: one main image, or a title of 62 bytes, is a 422 naming the field
        # (the task stays open in round 1), never a rework round.
        one_image = listing_form(files, sku, main_images=files["main_images"][:1])
        refused = product.post(f"/tasks/{first['id']}/complete", json={"data": one_image})
        assert refused.status_code == 422, refused.text
        assert [(f["field"], f["rule"]) for f in refused.json()["fields"]] == [("main_images", "min_items")]
        long_title = listing_form(files, sku, title="纯" * 31)
        refused = product.post(f"/tasks/{first['id']}/complete", json={"data": long_title})
        assert [(f["field"], f["rule"]) for f in refused.json()["fields"]] == [("title", "max_bytes")]
        assert "62" in refused.json()["fields"][0]["message"]
        assert product.get(f"/tasks/{first['id']}").json()["state"] == "claimed"

        # What it cannot say (banned terms, the price policy) the check sends back, with every finding.
        done = product.post(
            f"/tasks/{first['id']}/complete", json={"data": listing_form(files, sku, title="全网最好穿的纯棉T恤")}
        )
        assert done.status_code == 200, done.text
        [hit] = findings_of(product, iid, 2)
        assert (hit["field"], hit["rule"]) == ("title", "ad_law") and "'最'" in hit["message"]

        # Below the list price in master data, with no campaign or event price the owner approved: sent back.
        below = listing_form(files, other, price=95.0)
        product.do(product.wait_for_task(iid, "prepare_listing", round=2)["id"], below)
        [price] = findings_of(product, iid, 3)
        assert (price["field"], price["rule"]) == ("skus[0].price", "price_deviation")
        assert "online price 95.0 is 5% below the list price 100.00" in price["message"]

        everything = listing_form(files, other, title="最" * 30, price=95.0)
        product.do(product.wait_for_task(iid, "prepare_listing", round=3)["id"], everything)
        rules = [finding["rule"] for finding in findings_of(product, iid, 4)]
        assert rules.count("ad_law") == 30 and "price_deviation" in rules
        key = artifact_key("listing_upload", started["business_key"], "listing-check")
        artifact = prefect_api("GET", f"/artifacts/{key}/latest")
        assert artifact.status_code == 200 and artifact.json()["type"] == "table"

        # No price given: the listing takes the list price from master data.
        product.do(product.wait_for_task(iid, "prepare_listing", round=4)["id"], listing_form(files, sku, price=None))
        review = ops.wait_for_task(iid, "review", round=4)
        context = ops.get(f"/tasks/{review['id']}").json()["context"]
        assert [(p["price"], p["verdict"], p["policy"]) for p in context["prices"]] == [("100.00", "ok", "unified")]
        assert context["in_peak_hours"] is True
        assert catalog_entries(iid) == []


class TestReworkCeiling:
    """Past max_rounds (5) of prepare_listing the managers decide; the listing never loops without end."""

    def reject_five_rounds(self, product: Staff, ops: Staff, iid: str, files: dict[str, list[str]], sku: str) -> None:
        for round in range(1, 6):
            product.do(product.wait_for_task(iid, "prepare_listing", round=round)["id"], listing_form(files, sku))
            review = ops.wait_for_task(iid, "review", round=round)
            ops.do(review["id"], {"decision": "reject", "comment": f"第{round}轮：主图不够清晰"})

    def test_the_managers_stop_it(self, stack: Stack, team: dict[str, Staff]) -> None:
        product, ops, owner = team["product"], team["ops"], team["owner"]
        files, sku = listing_files(product), new_sku()
        iid = product.start("listing_upload", {"sku": sku}, f"UP-{uuid.uuid4().hex[:6]}")["id"]
        self.reject_five_rounds(product, ops, iid, files, sku)

        ceiling = owner.wait_for_task(iid, "rework_ceiling", round=5)
        shown = owner.get(f"/tasks/{ceiling['id']}").json()
        assert shown["context"]["rework_ceiling"] == {"step": "prepare_listing", "rounds": 5, "max_rounds": 5}
        assert product._open_task(iid, "prepare_listing", 6) is None  # no sixth round until the managers decide
        # A manager of another role sees it too (managers see every task).
        assert ops._open_task(iid, "rework_ceiling", 5) is not None
        owner.do(ceiling["id"], {"decision": "stop", "comment": "重新拍摄后再上架"})

        done = wait_until(lambda: finished(owner, iid), timeout=60, what=f"instance {iid} finished")
        assert done["result"]["outcome"] == "stopped_at_rework_ceiling"
        assert (done["result"]["step"], done["result"]["rounds"]) == ("prepare_listing", 5)
        assert done["result"]["stopped_by"] == owner.name
        escalations = [e for e in done["history"] if e["type"] == "instance.rework_ceiling"]
        assert [e["data"] for e in escalations] == [{"step": "prepare_listing", "rounds": 5, "max_rounds": 5}]

    def test_more_rounds_lets_the_work_go_on(self, stack: Stack, team: dict[str, Staff]) -> None:
        product, ops, owner = team["product"], team["ops"], team["owner"]
        files, sku = listing_files(product), new_sku()
        iid = product.start("listing_upload", {"sku": sku}, f"UP-{uuid.uuid4().hex[:6]}")["id"]
        self.reject_five_rounds(product, ops, iid, files, sku)
        owner.do(
            owner.wait_for_task(iid, "rework_ceiling", round=5)["id"],
            {"decision": "more_rounds", "comment": "再给一次机会"},
        )

        product.do(product.wait_for_task(iid, "prepare_listing", round=6)["id"], listing_form(files, sku))
        assert ops.wait_for_task(iid, "review", round=6)["round"] == 6


def finished(staff: Staff, instance_id: str) -> dict[str, Any] | None:
    instance = staff.get(f"/instances/{instance_id}").json()
    return instance if instance["state"] == "completed" else None


class TestGoLive:
    def test_reviewed_listing_is_published_when_the_slot_comes_and_not_before(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        product, ops = team["product"], team["ops"]
        files = listing_files(product)
        sku = new_sku()
        started = product.start("listing_upload", {"sku": sku}, f"UP-{uuid.uuid4().hex[:6]}")
        iid = started["id"]
        product.do(product.wait_for_task(iid, "prepare_listing")["id"], listing_form(files, sku))

        first = ops.wait_for_task(iid, "review")
        ops.do(first["id"], {"decision": "reject", "comment": "主图第一张换白底"})
        again = product.wait_for_task(iid, "prepare_listing", round=2)
        rework = product.get(f"/tasks/{again['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "step": "review", "comment": "主图第一张换白底", "by": ops.name}
        product.do(again["id"], listing_form(files, sku))
        ops.do(ops.wait_for_task(iid, "review", round=2)["id"], {"decision": "approve"})

        timer = wait_until(lambda: go_live_timer(iid), timeout=60, what="the go-live timer")
        slot = peak_slot()
        assert timer.fire_at == slot and timer.fired_at is None
        # (Other tests' timers on this shared stack may be due before the slot: only this one's is watched.)
        sweep_once(now=slot - timedelta(minutes=1))
        product.wait_for_state(iid, "waiting")  # the run suspends just after arming the timer
        assert go_live_timer(iid).fired_at is None and catalog_entries(iid) == []

        assert sweep_once(now=slot + timedelta(minutes=1)).timers_fired >= 1
        verify = product.wait_for_task(iid, "verify_live")
        [entry] = catalog_entries(iid)
        assert (entry.kind, entry.ref, entry.content["title"]) == ("listing", sku, listing_form(files, sku)["title"])
        context = product.get(f"/tasks/{verify['id']}").json()["context"]
        assert context["catalog"]["channel_ref"] == entry.channel_ref
        # The platforms' bulk-upload files are offered with the verify task and on the instance.
        taobao_id, jd_id = context["catalog"]["bulk_upload_files"]
        offered = product.instance(iid)["files"]
        assert [(f["name"], f["attachment_id"]) for f in offered] == [("taobao_csv", taobao_id), ("jd_xlsx", jd_id)]
        taobao = product.get(f"/attachments/{taobao_id}")
        assert taobao.status_code == 200 and taobao.headers["content-type"].startswith("text/csv")
        lines = list(csv.reader(io.StringIO(taobao.content.decode("utf-16"), newline=""), delimiter="\t"))
        item = dict(zip(lines[1], lines[3], strict=True))
        assert (lines[0], item["title"], item["outer_id"]) == (["version 1.00"], listing_form(files, sku)["title"], sku)
        assert (item["price"], item["num"], item["list_time"]) == ("100.00", "50", slot.strftime("%Y-%m-%d %H:%M:%S"))
        jd = load_workbook(io.BytesIO(product.get(f"/attachments/{jd_id}").content)).active
        [first_sku, *_] = jd.iter_rows(min_row=3, values_only=True)
        assert first_sku[4:8] == (sku, "白色/L", "100.00", 50)
        product.do(verify["id"], {"listing_url": f"https://shop.example.com/item/{sku}", "result": "ok"})

        done = product.wait_for_state(iid, "completed")
        assert done["result"]["outcome"] == "live" and done["result"]["sku"] == sku
        assert len(catalog_entries(iid)) == 1
        # Publishing wrote the SKU's online price and listed stock into master data, with the platform fields.
        with session_scope() as session:
            live = listings_of(session, [sku])[sku]
            assert (live.online_price, live.listed_stock) == (Decimal("100.00"), 50)
            assert (live.shipping_template, live.dispatch_within_hours) == ("包邮-江浙沪", 48)
        assert done["result"]["catalog"]["variants"] == {sku: {"online_price": "100.00", "stock": 50}}


class TestPricesAndPerksFromCampaigns:
    def test_an_approved_campaign_price_passes_its_perks_go_live_and_online_only_is_free(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        product, ops = team["product"], team["ops"]
        files = listing_files(product)
        sku, net_only = new_sku(), new_sku(online_only=True)
        # An approved event (any instance holds it; here a throwaway listing) priced the SKU at 88 with perks.
        holder = product.start("listing_upload", {"sku": sku}, f"EVT-{uuid.uuid4().hex[:6]}")["id"]
        perks = {
            "free_shipping": True,
            "gift": None,
            "coupons": [{"threshold": "99", "amount": "10", "expected_uses": 5}],
        }
        with session_scope() as session:
            save_campaign(
                session,
                instance_id=holder,
                theme="聚划算",
                starts_on="2026-12-10",
                ends_on="2026-12-12",
                budget=Decimal(5000),
                details={"kind": "event", "skus": [{"sku": sku, "online_price": 88}], "perks": perks},
            )
            rows = [{"sku": sku, "price": "88", "list_price": "100.00", "verdict": "deviation"}]
            record_deviations(
                session, verdicts=rows, reason="聚划算报名价", approved_by="boss", instance_id=holder, process_key="t"
            )
        ops.post(f"/instances/{holder}/cancel", json={"reason": "only holds the event"})

        started = product.start("listing_upload", {"sku": sku}, f"UP-{uuid.uuid4().hex[:6]}")
        iid = started["id"]
        skus = [
            {"sku": sku, "spec": "白色/L", "stock": 50, "price": 88.0},
            {"sku": net_only, "stock": 9, "price": 40.0},
        ]
        product.do(product.wait_for_task(iid, "prepare_listing")["id"], listing_form(files, sku, price=None, skus=skus))
        review = ops.wait_for_task(iid, "review")
        prices = ops.get(f"/tasks/{review['id']}").json()["context"]["prices"]
        assert [(p["sku"], p["verdict"]) for p in prices] == [(sku, "ok"), (net_only, "exempt")]
        assert "聚划算报名价" in prices[0]["message"]
        ops.do(review["id"], {"decision": "approve"})

        wait_until(lambda: go_live_timer(iid), timeout=60, what="the go-live timer")
        product.wait_for_state(iid, "waiting")
        assert sweep_once(now=peak_slot() + timedelta(minutes=1)).timers_fired >= 1
        product.wait_for_task(iid, "verify_live")
        [entry] = catalog_entries(iid)
        assert [(p["source"], p["theme"], p["free_shipping"], p["coupons"]) for p in entry.content["perks"]] == [
            ("event", "聚划算", True, perks["coupons"])
        ]
        ops.post(f"/instances/{iid}/cancel", json={"reason": "test over"})
