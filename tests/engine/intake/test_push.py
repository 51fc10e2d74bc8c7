"""The pushed feed's signature, its body's checks, and its one-transaction write."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.platform_models import ImportRun, InboundDelivery, PlatformRefund
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Unauthorized, ValidationFailed
from ecomflow.engine.intake import cases
from ecomflow.engine.intake.push import receive, sign, signed_text, verify
from ecomflow.engine.intake.push_events import parse_batch

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
SECRET = "s3cret-of-the-erp"


def refund_event(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "refund_no": "TB-R-1",
        "order_no": "3401234567890123456",
        "kind": "return_refund",
        "status": "requested",
        "platform_status": "买家已经申请退款，等待卖家同意",
        "amount": "89.00",
        "requested_at": "2026-12-05T10:15:00+08:00",
        "sku": "TEE-RED-M",
    }
    event.update(fields)
    return event


def body_of(*events: dict[str, object], kind: str = "refunds") -> bytes:
    return json.dumps({"platform": "tmall", "kind": kind, "events": list(events)}, ensure_ascii=False).encode()


class TestSignature:
    def test_the_signature_is_hmac_sha256_over_timestamp_dot_body(self) -> None:
        body = b'{"a": 1}'
        expected = hmac.new(SECRET.encode(), b"1764936000." + body, hashlib.sha256).hexdigest()
        assert signed_text("1764936000", body) == b"1764936000." + body
        assert sign(SECRET, "1764936000", body) == "sha256=" + expected

    def test_a_good_signature_inside_the_window_passes(self) -> None:
        body = body_of(refund_event())
        verify(secret=SECRET, source="erp", timestamp=STAMP, signature=sign(SECRET, STAMP, body), body=body,
               now=NOW, window_seconds=300)  # fmt: skip

    @pytest.mark.parametrize(
        ("secret", "timestamp", "signature", "words"),
        [
            (None, STAMP, "sha256=00", "no inbound secret"),
            (SECRET, STAMP, None, "does not match"),
            (SECRET, STAMP, "sha256=" + "0" * 64, "does not match"),
            (SECRET, None, "sha256=00", "unix seconds"),
            (SECRET, "yesterday", "sha256=00", "unix seconds"),
            (SECRET, str(int(NOW.timestamp()) - 301), "", "the window is 300 s"),
            (SECRET, str(int(NOW.timestamp()) + 301), "", "the window is 300 s"),
        ],
    )
    def test_a_bad_signature_an_expired_stamp_or_an_unknown_source_is_refused(
        self, secret: str | None, timestamp: str | None, signature: str | None, words: str
    ) -> None:
        body = body_of(refund_event())
        if signature == "" and timestamp is not None:
            signature = sign(SECRET, timestamp, body)  # well signed, but outside the window
        with pytest.raises(Unauthorized, match=words):
            verify(secret=secret, source="erp", timestamp=timestamp, signature=signature, body=body, now=NOW,
                   window_seconds=300)  # fmt: skip

    def test_a_body_changed_after_signing_is_refused(self) -> None:
        body = body_of(refund_event())
        signature = sign(SECRET, STAMP, body)
        with pytest.raises(Unauthorized):
            verify(secret=SECRET, source="erp", timestamp=STAMP, signature=signature,
                   body=body.replace(b"89.00", b"890.00"), now=NOW, window_seconds=300)  # fmt: skip


class TestBody:
    def test_a_good_batch_becomes_refund_records(self) -> None:
        batch = parse_batch(body_of(refund_event(), refund_event(refund_no="TB-R-2", kind="exchange")))
        assert (batch.platform, batch.kind) == ("tmall", "refunds")
        assert [r.refund_no for r in batch.records] == ["TB-R-1", "TB-R-2"]
        assert str(batch.records[0].amount) == "89.00" and batch.records[0].requested_at.utcoffset() is not None

    @pytest.mark.parametrize(
        ("event", "field", "rule"),
        [
            (refund_event(amount=89.0), "events[1].amount", "value_error"),
            (refund_event(amount="8.999"), "events[1].amount", "decimal_max_places"),
            (refund_event(requested_at="2026-12-05T10:15:00"), "events[1].requested_at", "timezone_aware"),
            (refund_event(kind="refund"), "events[1].kind", "literal_error"),
            (refund_event(refund_no=""), "events[1].refund_no", "string_too_short"),
            ({**refund_event(), "surprise": 1}, "events[1].surprise", "extra_forbidden"),
        ],
    )
    def test_a_bad_event_is_named_by_its_position_and_field(self, event: dict, field: str, rule: str) -> None:
        with pytest.raises(ValidationFailed) as refused:
            parse_batch(body_of(refund_event(refund_no="TB-R-0"), event))
        assert [(p.field, p.rule) for p in refused.value.problems] == [(field, rule)]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (b"not json", "body"),
            (b"[]", "body"),
            (json.dumps({"platform": "tmall", "kind": "stock", "events": []}).encode(), "kind"),
            (json.dumps({"platform": "taobao", "kind": "reviews", "events": []}).encode(), "platform"),
        ],
    )
    def test_a_bad_envelope_is_named(self, body: bytes, field: str) -> None:
        with pytest.raises(ValidationFailed) as refused:
            parse_batch(body)
        assert refused.value.problems[0].field == field

    def test_reviews_and_orders_have_their_own_fields(self) -> None:
        review = {"review_id": "V1", "order_no": "O-1234", "rating": 1, "reviewed_at": "2026-12-05T10:00:00+08:00"}
        assert parse_batch(body_of(review, kind="reviews")).records[0].rating == 1
        order = {
            "order_no": "O-1234",
            "status": "paid",
            "platform_status": "买家已付款",
            "paid_amount": "10.00",
            "ordered_at": "2026-12-05T10:00:00+08:00",
            "lines": [{"sku": "TEE", "title": "T恤", "quantity": 1, "price": "10.00"}],
        }
        assert parse_batch(body_of(order, kind="orders")).records[0].lines[0].sku == "TEE"
        with pytest.raises(ValidationFailed) as refused:
            parse_batch(body_of({**order, "lines": [{"title": "T恤", "quantity": 0, "price": "10.00"}]}, kind="orders"))
        assert [p.field for p in refused.value.problems] == ["events[0].lines[0].quantity"]


def counts() -> tuple[int, int, int, int]:
    with session_scope() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model))
            for model in (InboundDelivery, ImportRun, PlatformRefund, ProcessInstance)
        )


@pytest.mark.usefixtures("clean_db")
class TestReceive:
    def test_a_delivery_writes_its_run_its_records_and_starts_the_return(self) -> None:
        with session_scope() as session:
            receipt = receive(session, source="erp", delivery_id="d-1", batch=parse_batch(body_of(refund_event())))
        assert (receipt.duplicate, receipt.created) == (False, 1)
        assert counts() == (1, 1, 1, 1)
        with session_scope() as session:
            run = session.get(ImportRun, receipt.import_run_id)
            assert (run.source, run.actor, run.kind, run.finished_at is not None) == ("push:erp", "push:erp",
                                                                                      "refunds", True)  # fmt: skip
            assert session.get(InboundDelivery, ("erp", "d-1")).import_run_id == run.id

    def test_a_repeated_delivery_id_is_acknowledged_and_writes_nothing(self) -> None:
        batch = parse_batch(body_of(refund_event()))
        with session_scope() as session:
            first = receive(session, source="erp", delivery_id="d-1", batch=batch)
        with session_scope() as session:
            again = receive(session, source="erp", delivery_id="d-1", batch=parse_batch(body_of(refund_event(
                refund_no="TB-R-9"))))  # fmt: skip
        assert again.duplicate and again.import_run_id == first.import_run_id
        assert counts() == (1, 1, 1, 1)

    def test_the_same_delivery_id_of_another_source_is_another_delivery(self) -> None:
        for source in ("erp", "wms"):
            with session_scope() as session:
                batch = parse_batch(body_of(refund_event(refund_no=f"R-{source}")))
                assert not receive(session, source=source, delivery_id="d-1", batch=batch).duplicate
        assert counts() == (2, 2, 2, 2)

    def test_a_failure_after_the_first_rows_leaves_nothing_written(self, monkeypatch: pytest.MonkeyPatch) -> None:
        started = cases.refund_changed

        def fail_on_the_second(session, refund, *, before, actor):  # type: ignore[no-untyped-def]
            if refund.refund_no == "TB-R-2":
                raise ValidationFailed("refund TB-R-2 refused", problems=[])
            started(session, refund, before=before, actor=actor)

        monkeypatch.setattr(cases, "refund_changed", fail_on_the_second)
        batch = parse_batch(body_of(refund_event(), refund_event(refund_no="TB-R-2")))
        with pytest.raises(ValidationFailed), session_scope() as session:
            receive(session, source="erp", delivery_id="d-1", batch=batch)
        assert counts() == (0, 0, 0, 0)
