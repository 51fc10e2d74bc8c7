"""商品拍摄: the reviewer redoes the retouch or the shoot; the archive starts 11 → 3 → 12 once each, per product."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import CatalogEntry, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from tests.e2e.conftest import Stack, Staff
from tests.e2e.uploads import module_design, retouch_form, shoot_form

pytestmark = [pytest.mark.e2e, pytest.mark.processes]


def new_skus(count: int) -> list[str]:
    return [f"SKU-{uuid.uuid4().hex[:8]}" for _ in range(count)]


def product_of(product: str, skus: list[str]) -> dict[str, Any]:
    return {"product": product, "skus": skus}


def request_form(products: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "products": products,
        "shot_list": ["white_background", "main_video", "main", "detail", "model"],
        "style": "白底主图，自然光模特图",
        "deadline": (date.today() + timedelta(days=5)).isoformat(),
    }


# The start of an MP4 file (an ftyp box): what the upload sniffing recognises as video/mp4.
MAIN_VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def children_of(instance_id: str) -> list[ProcessInstance]:
    with session_scope() as session:
        return list(session.scalars(select(ProcessInstance).where(ProcessInstance.parent_id == instance_id)))


def catalog_entries(instance_id: str) -> list[CatalogEntry]:
    with session_scope() as session:
        return list(session.scalars(select(CatalogEntry).where(CatalogEntry.instance_id == instance_id)))


def hand_over_samples(warehouse: Staff, instance_id: str, skus: list[str], receiver: str) -> None:
    task = warehouse.wait_for_task(instance_id, "sample_handover")
    warehouse.do(task["id"], {"samples": [{"sku": sku, "quantity": 1} for sku in skus], "handed_to": receiver})


class TestReview:
    def test_reject_redoes_the_retouch_or_the_shoot_as_the_reviewer_chooses(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        product, warehouse, visual, visual2, ops = (
            team["product"],
            team["warehouse"],
            team["visual"],
            team["visual2"],
            team["ops"],
        )
        skus = new_skus(3)
        tee = product_of("SPU-TEE", skus[:2])
        started = product.start("product_photo_shoot", {"products": [tee]}, f"SHOOT-{uuid.uuid4().hex[:6]}")
        iid = started["id"]
        # The request names the tee twice (once with a third colour) and the first SKU twice.
        again = product_of("SPU-TEE", [skus[0], skus[2]])
        product.do(product.wait_for_task(iid, "request")["id"], request_form([tee, again]))
        hand_over_samples(warehouse, iid, skus, visual.name)
        first_shoot = shoot_form(visual, 1)
        visual.do(visual.wait_for_task(iid, "shoot")["id"], first_shoot)
        visual2.do(visual2.wait_for_task(iid, "retouch")["id"], retouch_form(visual2, 1))

        # No redo chosen: the retouch is redone, the shoot is kept.
        ops.do(ops.wait_for_task(iid, "review")["id"], {"decision": "reject", "comment": "肤色偏黄"})
        retouch = visual2.wait_for_task(iid, "retouch", round=2)
        context = visual2.get(f"/tasks/{retouch['id']}").json()["context"]
        assert context["rework"] == {"round": 1, "comment": "肤色偏黄", "by": ops.name, "redo": "retouch"}
        assert context["shoot"] == first_shoot
        # The retoucher sees the shoot's photos: the instance uses them now.
        assert visual2.get(f"/attachments/{first_shoot['raw_photos'][0]}/thumbnail").status_code == 200
        visual2.do(retouch["id"], retouch_form(visual2, 2))

        ops.do(
            ops.wait_for_task(iid, "review", round=2)["id"],
            {"decision": "reject", "comment": "模特图要重拍", "redo": "shoot"},
        )
        shoot = visual.wait_for_task(iid, "shoot", round=3)
        rework = visual.get(f"/tasks/{shoot['id']}").json()["context"]["rework"]
        assert rework == {"round": 2, "comment": "模特图要重拍", "by": ops.name, "redo": "shoot"}
        third_shoot = shoot_form(visual, 3)
        visual.do(shoot["id"], third_shoot)
        retouch = visual2.wait_for_task(iid, "retouch", round=3)
        assert visual2.get(f"/tasks/{retouch['id']}").json()["context"]["shoot"] == third_shoot
        final = retouch_form(visual2, 3)
        visual2.do(retouch["id"], final)
        ops.do(ops.wait_for_task(iid, "review", round=3)["id"], {"decision": "approve"})

        warehouse.do(warehouse.wait_for_task(iid, "sample_return")["id"], {"condition": "ok"})
        done = ops.wait_for_state(iid, "completed")
        steps = sorted(
            (task["step"], task["round"]) for task in done["tasks"] if task["step"] in ("shoot", "retouch", "review")
        )
        assert steps == [
            ("retouch", 1),
            ("retouch", 2),
            ("retouch", 3),
            ("review", 1),
            ("review", 2),
            ("review", 3),
            ("shoot", 1),
            ("shoot", 3),
        ]
        [entry] = catalog_entries(iid)
        assert (entry.kind, entry.content["final_photos"], entry.content["raw_photos"]) == (
            "photo_set",
            final["final_photos"],
            third_shoot["raw_photos"],
        )
        # One module for the product, its variants together, though the request named it and a SKU twice.
        [module] = children_of(iid)
        assert (module.params["product"], module.params["skus"]) == ("SPU-TEE", skus)


class TestChain:
    def test_shoot_starts_a_module_per_product_and_each_module_starts_its_upload_once(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        product, warehouse, visual, ops = team["product"], team["warehouse"], team["visual"], team["ops"]
        skus = new_skus(3)
        products = [product_of("SPU-TEE", skus[:2]), product_of("SPU-JEANS", skus[2:])]
        started = product.start("product_photo_shoot", {}, f"SHOOT-{uuid.uuid4().hex[:6]}")
        iid = started["id"]
        product.do(product.wait_for_task(iid, "request")["id"], request_form(products))
        hand_over_samples(warehouse, iid, skus, visual.name)
        visual.do(visual.wait_for_task(iid, "shoot")["id"], shoot_form(visual, 1))
        photos = {**retouch_form(visual, 1), "main_video": visual.upload(MAIN_VIDEO, "main.mp4")}
        visual.do(visual.wait_for_task(iid, "retouch")["id"], photos)
        ops.do(ops.wait_for_task(iid, "review")["id"], {"decision": "approve"})
        warehouse.do(warehouse.wait_for_task(iid, "sample_return")["id"], {"condition": "ok"})

        shoot = ops.wait_for_state(iid, "completed")
        archive = shoot["result"]["photo_archive"]
        [photo_set] = catalog_entries(iid)
        assert photo_set.content["main_video"] == photos["main_video"]
        assert photo_set.content["shot_list"][:2] == ["white_background", "main_video"]
        modules = {
            ops.instance(child["id"])["params"]["product"]: ops.instance(child["id"]) for child in shoot["children"]
        }
        assert set(modules) == {"SPU-TEE", "SPU-JEANS"} and len(shoot["children"]) == 2
        assert modules["SPU-TEE"]["params"]["skus"] == skus[:2] and modules["SPU-JEANS"]["params"]["skus"] == skus[2:]
        for module in modules.values():
            assert module["process"] == "listing_module_production"
            assert module["params"]["photo_archive"] == archive
            # Each module's designer gets the approved photos.
            assert module["params"]["photos"] == [*photos["main_images"], *photos["final_photos"]]
            assert module["parent"]["id"] == iid

        first = modules["SPU-TEE"]["id"]
        points = {
            "sku": skus[0],
            "selling_points": ["新疆长绒棉", "双针走线", "宽松版型"],
            "specs": [{"name": "面料", "value": "棉"}],
            "audience": "通勤男性",
        }
        product.do(product.wait_for_task(first, "write_selling_points")["id"], points)
        design = visual.wait_for_task(first, "design_module")
        shown = visual.get(f"/tasks/{design['id']}").json()["context"]
        assert shown["photos"] == modules["SPU-TEE"]["params"]["photos"] and shown["skus"] == skus[:2]
        visual.do(design["id"], module_design(visual, 1))
        ops.do(ops.wait_for_task(first, "review_module")["id"], {"decision": "approve"})

        module = ops.wait_for_state(first, "completed")
        [upload_link] = module["children"]
        assert upload_link["process"] == "listing_upload"
        assert module["parent"]["id"] == iid
        upload = ops.instance(upload_link["id"])
        assert upload["parent"]["id"] == first
        assert (upload["params"]["product"], upload["params"]["skus"]) == ("SPU-TEE", skus[:2])
        product.wait_for_task(upload["id"], "prepare_listing")

        # Started once each, however often the flows replayed.
        assert len(children_of(iid)) == 2
        assert [child.id for child in children_of(first)] == [upload["id"]]
        assert children_of(modules["SPU-JEANS"]["id"]) == []
        assert {child["id"] for child in ops.instance(iid)["children"]} == {m["id"] for m in modules.values()}
