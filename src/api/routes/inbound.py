"""The pushed feed for ERPs and middleware: orders, refunds and reviews, signed per source (no bearer token)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ecomflow.api.errors import error_responses
from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake.push import Receipt, check_delivery_id, receive, verify
from ecomflow.engine.intake.push_events import parse_batch

router = APIRouter(prefix="/inbound", tags=["inbound"])

EXAMPLE = {
    "platform": "tmall",
    "kind": "refunds",
    "events": [
        {
            "refund_no": "TB-REFUND-2026120100017",
            "order_no": "3401234567890123456",
            "kind": "return_refund",
            "status": "returned",
            "platform_status": "买家已经退货，等待卖家确认收货",
            "amount": "89.00",
            "requested_at": "2026-12-01T10:15:00+08:00",
            "sku": "TEE-RED-M",
            "reason": "七天无理由退换货",
            "return_carrier": "顺丰速运",
            "return_tracking_no": "SF1234567890123",
        }
    ],
}

_EVENT_FIELDS = {
    "orders": "order_no, status (awaiting_payment|paid|shipped|completed|cancelled), platform_status, paid_amount, "
    "ordered_at; optional paid_at, total_amount, postage, shop, buyer_nick, receiver_name, receiver_phone, address, "
    "buyer_message, seller_note, address_changed, risk_flag, carrier, tracking_no, location, "
    "lines [{sku, title, quantity, price}]",
    "refunds": "refund_no, order_no, kind (refund_only 仅退款|return_refund 退货退款|exchange 换货), "
    "status (requested|awaiting_return|returned|refunded|rejected|cancelled), platform_status, amount, requested_at; "
    "optional paid_amount, sku, title, reason, buyer_nick, completed_at, return_carrier, return_tracking_no",
    "reviews": "review_id, order_no, rating (1-5), reviewed_at; optional rating_label, sku, title, content, buyer_nick",
}

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["platform", "kind", "events"],
                    "properties": {
                        "platform": {"type": "string", "enum": ["tmall", "jd"]},
                        "kind": {"type": "string", "enum": list(_EVENT_FIELDS)},
                        "events": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {
                                "type": "object",
                                "description": "; ".join(f"{k}: {v}" for k, v in _EVENT_FIELDS.items()),
                            },
                        },
                    },
                },
                "example": EXAMPLE,
            }
        },
    }
}


class InboundReceipt(BaseModel):
    """The answer to a delivery: its import run and counts, or duplicate=true when the id was seen before."""

    duplicate: bool
    import_run_id: str | None
    created: int
    updated: int
    unchanged: int


@router.post(
    "/{source}/events",
    response_model=InboundReceipt,
    openapi_extra=_BODY,
    responses={
        **error_responses(413, 422),
        401: {
            **error_responses(401)[401],
            "description": "bad or missing signature, timestamp outside the window, or a source without a secret",
        },
    },
)
async def push_events(
    request: Request,
    source: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="the sender, e.g. erp")],
    x_ecomflow_timestamp: Annotated[str | None, Header(description="signing time, unix seconds")] = None,
    x_ecomflow_signature: Annotated[str | None, Header(description="sha256=<hex HMAC-SHA256>")] = None,
    x_ecomflow_delivery: Annotated[str | None, Header(description="the sender's id of this delivery")] = None,
) -> InboundReceipt:
    """Receive a batch of orders, refunds or reviews from an ERP or middleware, written all or nothing.

    **Signature.** Each source has its own secret (`ECOMFLOW_INBOUND_SECRETS='{"erp": "<secret>"}'`). Sign
    the exact bytes sent: `X-Ecomflow-Signature: sha256=` + hex HMAC-SHA256(secret, `"<timestamp>." + body`),
    where `<timestamp>` is the value of `X-Ecomflow-Timestamp` (unix seconds, within 5 minutes of the server's
    clock). A bad signature, a timestamp outside the window or a source without a secret is a 401.

    **Deliveries.** `X-Ecomflow-Delivery` names the delivery; a retry sends the same id, and a repeated id is
    answered 200 with `duplicate: true`, writing nothing.

    **Events.** Amounts are decimal strings (`"89.00"`), times ISO 8601 with their offset. A bad event is a 422
    naming the field (`events[0].amount`) and nothing of the batch is written. Refunds start and move
    returns_exchange cases; a review rated 3 or less (中差评) reaches a follow-up.
    """
    body = await request.body()
    settings = get_settings()
    secret = settings.inbound_secrets.get(source)
    verify(
        secret=secret.get_secret_value() if secret is not None else None,
        source=source,
        timestamp=x_ecomflow_timestamp,
        signature=x_ecomflow_signature,
        body=body,
        now=utcnow(),
        window_seconds=settings.inbound_window_seconds,
    )
    delivery_id = check_delivery_id(x_ecomflow_delivery)
    receipt = await run_in_threadpool(_receive, source, delivery_id, body)
    return InboundReceipt(**asdict(receipt))


def _receive(source: str, delivery_id: str, body: bytes) -> Receipt:
    """Check the body, then write the delivery and its records in one transaction (a duplicate writes nothing)."""
    batch = parse_batch(body)
    with session_scope() as session:
        return receive(session, source=source, delivery_id=delivery_id, batch=batch)
