"""Webhooks: sign a queued notification with HMAC-SHA256 and POST it; verify a signature as a receiver.

Every request carries
    Content-Type: application/json
    X-Ecomflow-Event: <event>, e.g. task.created
    X-Ecomflow-Delivery: <delivery id>, the same on every retry, for receivers to de-duplicate
    X-Ecomflow-Timestamp: <unix seconds when sent>
    X-Ecomflow-Signature: sha256=<hex of HMAC-SHA256(secret, f"{timestamp}.{body}")>

WebhookFailed             the receiver did not take it (non-2xx or transport error): retry later
outbox.Undeliverable      the endpoint is gone or the last allowed attempt failed: give up
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import Settings, WebhookEndpoint, get_settings
from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.events import outbox

# Receivers may be down for a while: back off up to ten minutes between attempts.
MAX_BACKOFF = timedelta(minutes=10)
SIGNATURE_SCHEME = "sha256"
DEFAULT_TOLERANCE_SECONDS = 300
BODY_KEYS = ("delivery_id", "event", "occurred_at", "data")


class WebhookFailed(Exception):
    """The receiver did not accept the delivery; it is retried after a backoff."""


def find_endpoint(settings: Settings, name: str) -> WebhookEndpoint | None:
    """Return the configured endpoint of that name, if it is still configured."""
    return next((endpoint for endpoint in settings.webhooks if endpoint.name == name), None)


def encode_body(payload: dict[str, Any]) -> bytes:
    """Return the JSON body a receiver gets for a queued webhook message."""
    return json.dumps({key: payload[key] for key in BODY_KEYS}, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, *, timestamp: int | str, body: bytes) -> str:
    """Return the X-Ecomflow-Signature value for a body sent at a timestamp."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Return whether the signature is ours for this body and the timestamp is within tolerance of now."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = utcnow().timestamp() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    # Constant-time: a timing difference must not reveal how much of a forged signature was right.
    return hmac.compare_digest(sign(secret, timestamp=sent_at, body=raw), signature)


def signed_headers(*, secret: str, event: str, delivery_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Return the headers of one delivery attempt."""
    return {
        "Content-Type": "application/json",
        "X-Ecomflow-Event": event,
        "X-Ecomflow-Delivery": delivery_id,
        "X-Ecomflow-Timestamp": str(timestamp),
        "X-Ecomflow-Signature": sign(secret, timestamp=timestamp, body=body),
    }


def _post(endpoint: WebhookEndpoint, *, body: bytes, headers: dict[str, str], timeout: float) -> str | None:
    """POST the body; return why it was not accepted, or None when the receiver answered 2xx."""
    try:
        response = httpx.post(endpoint.url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__} reaching endpoint {endpoint.name!r}: {exc}"
    if response.is_success:
        return None
    return f"endpoint {endpoint.name!r} answered HTTP {response.status_code}"


def deliver_webhook(message: OutboxMessage) -> None:
    """Send one queued webhook; raise WebhookFailed to retry it, outbox.Undeliverable to give it up."""
    settings = get_settings()
    name = message.payload["endpoint"]
    endpoint = find_endpoint(settings, name)
    if endpoint is None:
        raise outbox.Undeliverable(f"webhook endpoint {name!r} is no longer configured")
    body = encode_body(message.payload)
    # The secret is read here, at delivery time, and never stored or logged.
    headers = signed_headers(
        secret=endpoint.secret.get_secret_value(),
        event=message.payload["event"],
        delivery_id=message.payload["delivery_id"],
        body=body,
        timestamp=int(utcnow().timestamp()),
    )
    failure = _post(endpoint, body=body, headers=headers, timeout=settings.webhook_timeout_seconds)
    if failure is None:
        return
    if message.attempts >= settings.webhook_max_attempts:
        raise outbox.Undeliverable(f"{failure}; given up after {message.attempts} attempts")
    raise WebhookFailed(failure)
