"""Platform data moves cases on a real stack: refunds start and advance returns, a signed push starts one,
a bad review reaches a follow-up call."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.db.platform_models import ImportRun, InboundDelivery, PlatformRefund, PlatformReview
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import ingest
from ecomflow.engine.intake.push import sign
from ecomflow.engine.intake.records import RefundRecord, ReviewRecord
from ecomflow.engine.shop.catalog import seed_sku
from tests.e2e.conftest import Stack, Staff, wait_until

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
ERP_SECRET = "e2e-erp-secret"  # as COMMON_ENV configures the stack's API


def new_sku() -> str:
    code = f"TEE-{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        seed_sku(session, sku=code, title="纯棉短袖T恤", list_price=Decimal("89"), stock=20)
    return code


def refund_request(sku: str, kind: str = "return_refund", **changes: Any) -> RefundRecord:
    """A refund request as a 退款报表 row maps it: asked today, 七天无理由."""
    record = RefundRecord(
        platform="tmall",
        refund_no=f"TB-R-{uuid.uuid4().hex[:10]}",
        order_no=f"34{uuid.uuid4().int % 10**17:017d}",
        kind=kind,
        status="requested",
        platform_status="买家已经申请退款，等待卖家同意",
        amount=Decimal("89.00"),
        requested_at=datetime.now(SHANGHAI).replace(microsecond=0),
        sku=sku,
        reason="七天无理由退换货",
    )
    return replace(record, **changes)


def import_records(kind: str, *records: RefundRecord | ReviewRecord) -> str:
    """Import as the file import does: one ImportRun, ingest.apply, one transaction."""
    with session_scope() as session:
        run = ImportRun(kind=kind, platform="tmall", source="file:e2e.csv", actor="e2e-importer")
        ingest.apply(session, kind, list(records), actor="e2e-importer", run=run)
        ingest.finish(session, run, actor="e2e-importer")
        return run.id


def case_of(refund_no: str) -> str:
    def started() -> str | None:
        with session_scope() as session:
            return session.scalar(select(PlatformRefund.instance_id).where(PlatformRefund.refund_no == refund_no))

    return wait_until(started, timeout=10, what=f"the case of refund {refund_no}")


def tasks_of(instance_id: str, step: str) -> list[HumanTask]:
    with session_scope() as session:
        query = select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.step_key == step)
        return list(session.scalars(query))


class TestRefundImports:
    def test_an_imported_request_starts_the_case_and_the_buyers_parcel_advances_it(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        request = refund_request(new_sku())
        import_records("refunds", request)
        iid = case_of(request.refund_no)
        case = team["owner"].instance(iid)
        assert (case["process"], case["params"]["kind"]) == ("returns_exchange", "return_refund")
        # Version 3 brought platform_parcel; test_definition_versions may have stored later ones on this stack.
        assert case["definition_version"] >= 3
        cs.do(cs.wait_for_task(iid, "cs_review")["id"], {"decision": "approve"})
        parcel = cs.wait_for_task(iid, "await_parcel")

        # The buyer ships: the next export has the refund with its tracking number (退货物流单号).
        shipped = replace(
            request,
            status="returned",
            platform_status="买家已经退货，等待卖家确认收货",
            return_carrier="顺丰速运",
            return_tracking_no="SF1400000001",
        )
        import_records("refunds", shipped)
        [filled] = tasks_of(iid, "await_parcel")
        assert (filled.id, filled.state, filled.completed_by) == (parcel["id"], "completed", "system")
        inspect = warehouse.wait_for_task(iid, "inspect")
        context = warehouse.get(f"/tasks/{inspect['id']}").json()["context"]
        assert context["parcel"] == {"return_tracking_no": "SF1400000001", "carrier": "顺丰速运"}
        assert context["return_shipping"]["cost"] is None  # the platform reports no shipping cost

        # The same export imported again changes nothing.
        import_records("refunds", shipped)
        assert len(tasks_of(iid, "await_parcel")) == 1

        warehouse.do(inspect["id"], {"condition": "ok", "restock": "yes"})
        done = team["owner"].wait_for_state(iid, "completed")
        assert done["result"]["outcome"] == "refunded" and done["result"]["kind"] == "return_refund"

    def test_a_parcel_reported_during_review_needs_nobody_to_type_it(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs, warehouse = team["cs"], team["warehouse"]
        request = refund_request(new_sku(), kind="exchange")
        import_records("refunds", request)
        iid = case_of(request.refund_no)
        review = cs.wait_for_task(iid, "cs_review")
        import_records("refunds", replace(request, status="returned", return_tracking_no="YT9000000002"))
        cs.do(review["id"], {"decision": "approve"})
        inspect = warehouse.wait_for_task(iid, "inspect")
        context = warehouse.get(f"/tasks/{inspect['id']}").json()["context"]
        assert context["parcel"] == {"return_tracking_no": "YT9000000002"}
        assert tasks_of(iid, "await_parcel") == []

    def test_a_withdrawn_request_cancels_its_case(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        request = refund_request(new_sku(), kind="refund_only")
        import_records("refunds", request)
        iid = case_of(request.refund_no)
        review = cs.wait_for_task(iid, "cs_review")
        import_records("refunds", replace(request, status="cancelled", platform_status="退款关闭"))
        cancelled = team["owner"].wait_for_state(iid, "cancelled")
        assert any(e["type"] == "instance.cancelled" and e["actor"] == "system" for e in cancelled["history"])
        [task] = tasks_of(iid, "cs_review")
        assert (task.id, task.state) == (review["id"], "cancelled")


def signed_post(api_url: str, body: bytes, *, secret: str = ERP_SECRET, delivery: str | None = None) -> httpx.Response:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Ecomflow-Timestamp": stamp,
        "X-Ecomflow-Signature": sign(secret, stamp, body),
        "X-Ecomflow-Delivery": delivery or uuid.uuid4().hex,
    }
    return httpx.post(f"{api_url}/inbound/erp/events", content=body, headers=headers, timeout=30)


def pushed_refund(sku: str) -> tuple[str, bytes]:
    refund_no = f"ERP-R-{uuid.uuid4().hex[:8]}"
    event = {
        "refund_no": refund_no,
        "order_no": f"34{uuid.uuid4().int % 10**17:017d}",
        "kind": "refund_only",
        "status": "requested",
        "platform_status": "买家已经申请退款，等待卖家同意",
        "amount": "59.90",
        "requested_at": datetime.now(SHANGHAI).replace(microsecond=0).isoformat(),
        "sku": sku,
        "reason": "收到商品破损",
    }
    return refund_no, json.dumps({"platform": "tmall", "kind": "refunds", "events": [event]}).encode()


class TestSignedPush:
    def test_a_signed_push_starts_a_return_and_a_bad_signature_is_refused(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs = team["cs"]
        deliveries = select(func.count()).select_from(InboundDelivery)
        with session_scope() as session:
            before = session.scalar(deliveries)
        refused_no, refused_body = pushed_refund(new_sku())
        refused = signed_post(stack.api_url, refused_body, secret="not-the-erp-secret")
        assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"
        with session_scope() as session:
            assert session.scalar(select(func.count()).where(PlatformRefund.refund_no == refused_no)) == 0
            assert session.scalar(deliveries) == before

        refund_no, body = pushed_refund(new_sku())
        answer = signed_post(stack.api_url, body, delivery="erp-delivery-1")
        assert answer.status_code == 200 and answer.json()["created"] == 1, answer.text
        iid = case_of(refund_no)
        review = cs.wait_for_task(iid, "cs_review")
        detail = cs.get(f"/tasks/{review['id']}").json()
        assert detail["context"]["kind"] == "refund_only"
        assert team["owner"].instance(iid)["params"]["cause"] == "faulty"  # 破损: the seller's fault
        again = signed_post(stack.api_url, body, delivery="erp-delivery-1")
        assert again.status_code == 200 and again.json()["duplicate"] is True
        with session_scope() as session:
            assert session.scalar(select(func.count()).where(PlatformRefund.refund_no == refund_no)) == 1


class TestBadReviews:
    def test_a_bad_review_reaches_a_follow_up_call(self, stack: Stack, team: dict[str, Staff]) -> None:
        cs = team["cs"]
        review = ReviewRecord(
            platform="tmall",
            review_id=f"RV-{uuid.uuid4().hex[:10]}",
            order_no=f"34{uuid.uuid4().int % 10**17:017d}",
            rating=1,
            rating_label="差评",
            reviewed_at=datetime.now(SHANGHAI).replace(microsecond=0),
            content="衣服洗一次就起球",
        )
        import_records("reviews", review)
        with session_scope() as session:
            iid = session.scalar(select(PlatformReview.instance_id).where(PlatformReview.review_id == review.review_id))
            assert session.get(ProcessInstance, iid).process_key == "review_follow_up"
        task = cs.wait_for_task(iid, "follow_up")
        context = cs.get(f"/tasks/{task['id']}").json()["context"]
        assert (context["rating"], context["content"]) == (1, "衣服洗一次就起球")
        cs.do(task["id"], {"contact_result": "resolved", "notes": "已补发一件，买家同意追评"})
        done = team["owner"].wait_for_state(iid, "completed")
        assert done["result"]["outcome"] == "resolved" and done["result"]["rating"] == 1

    def test_a_bad_review_of_a_running_return_is_followed_up_in_that_case(
        self, stack: Stack, team: dict[str, Staff]
    ) -> None:
        cs = team["cs"]
        request = refund_request(new_sku(), kind="refund_only")
        import_records("refunds", request)
        iid = case_of(request.refund_no)
        review = cs.wait_for_task(iid, "cs_review")
        bad = ReviewRecord(
            platform="tmall",
            review_id=f"RV-{uuid.uuid4().hex[:10]}",
            order_no=request.order_no,
            rating=3,
            rating_label="中评",
            reviewed_at=datetime.now(SHANGHAI).replace(microsecond=0),
        )
        import_records("reviews", bad)
        cs.do(review["id"], {"decision": "approve"})
        follow_up = cs.wait_for_task(iid, "follow_up")
        assert cs.get(f"/tasks/{follow_up['id']}").json()["context"]["rating"] == 3
        with session_scope() as session:
            # The running case follows it up: no follow-up case of its own.
            assert (
                session.scalar(select(PlatformReview.instance_id).where(PlatformReview.review_id == bad.review_id))
                is None
            )
