"""宝贝模块制作: selling points pass the advertising-law check, the module is reviewed, archived and uploaded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import CatalogEntry
from ecomflow.engine.db.sessions import session_scope
from tests.e2e.conftest import Stack, Staff
from tests.e2e.uploads import module_design

pytestmark = [pytest.mark.e2e, pytest.mark.processes]


def selling_points(sku: str, *points: str) -> dict[str, Any]:
    return {
        "sku": sku,
        "selling_points": list(points or ("新疆长绒棉，柔软亲肤", "双针走线，久洗不变形", "宽松版型，遮肉显瘦")),
        "specs": [{"name": "面料", "value": "100%棉"}, {"name": "尺码", "value": "S-XXL"}],
        "audience": "25-35岁通勤男性",
    }


def catalog_entries(instance_id: str) -> list[CatalogEntry]:
    with session_scope() as session:
        return list(session.scalars(select(CatalogEntry).where(CatalogEntry.instance_id == instance_id)))


class TestListingModule:
    def test_banned_terms_and_a_rejected_design_loop_back_then_the_module_goes_to_upload(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        product, visual, ops = team["product"], team["visual"], team["ops"]
        sku = f"SKU-{uuid.uuid4().hex[:8]}"
        archive = f"catalog:photos:{sku}"
        started = product.start(
            "listing_module_production", {"sku": sku, "photo_archive": archive}, f"MOD-{uuid.uuid4().hex[:6]}"
        )
        iid = started["id"]

        first = product.wait_for_task(iid, "write_selling_points")
        assert product.get(f"/tasks/{first['id']}").json()["context"]["photo_archive"] == archive
        assert product.post(f"/tasks/{first['id']}/claim").status_code == 200
        too_few = product.post(
            f"/tasks/{first['id']}/complete", json={"data": selling_points(sku, "只有一条卖点", "两条")}
        )
        assert too_few.status_code == 422  # at least three selling points
        banned = selling_points(sku, "全网最柔软的T恤", "行业第一品质", "透气舒适，最适合夏天")
        assert product.post(f"/tasks/{first['id']}/complete", json={"data": banned}).status_code == 200

        again = product.wait_for_task(iid, "write_selling_points", round=2)
        findings = product.get(f"/tasks/{again['id']}").json()["context"]["findings"]
        # Every term and where; "100%棉" in the specs is a fact, not scanned.
        assert [(f["field"], f["term"], f["position"]) for f in findings] == [
            ("selling_points[0]", "最", 2),
            ("selling_points[1]", "第一", 2),
            ("selling_points[2]", "最", 5),
        ]
        assert all(f["rule"] == "ad_law" for f in findings)
        product.do(again["id"], selling_points(sku))

        design = visual.wait_for_task(iid, "design_module")
        context = visual.get(f"/tasks/{design['id']}").json()["context"]
        assert context["selling_points"]["selling_points"][0] == "新疆长绒棉，柔软亲肤"
        visual.do(design["id"], module_design(visual, 1))
        review = ops.wait_for_task(iid, "review_module")
        ops.do(review["id"], {"decision": "reject", "comment": "卖点图标太小"})

        redesign = visual.wait_for_task(iid, "design_module", round=2)
        rework = visual.get(f"/tasks/{redesign['id']}").json()["context"]["rework"]
        assert rework == {"round": 1, "comment": "卖点图标太小", "by": ops.name}
        second = module_design(visual, 2)
        visual.do(redesign["id"], second)
        ops.do(ops.wait_for_task(iid, "review_module", round=2)["id"], {"decision": "approve", "comment": "OK"})

        done = ops.wait_for_state(iid, "completed")
        [entry] = catalog_entries(iid)
        assert (entry.kind, entry.ref) == ("listing_module", sku)
        assert entry.content["design"]["module_file"] == second["module_file"]
        assert done["result"]["module"] == entry.channel_ref

        [child] = done["children"]
        assert child["process"] == "listing_upload" and child["id"] == done["result"]["listing_upload"]
        upload = ops.instance(child["id"])  # a manager; product sees it once its task is open
        assert upload["params"] == {"sku": sku, "module": entry.channel_ref, "module_images": second["preview_images"]}
        assert upload["parent"]["id"] == iid
        product.wait_for_task(child["id"], "prepare_listing")
