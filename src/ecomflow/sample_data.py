"""Plausible form data from a step's JSON Schema, for the demo's simulated staff."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEMO_SKUS = {
    "DEMO-TEE-WHITE-M": ("纯棉圆领T恤 白色 M", 179, 199, 500),
    "DEMO-TEE-BLACK-L": ("纯棉圆领T恤 黑色 L", 169, 199, 400),
    "DEMO-JEANS-30": ("直筒牛仔裤 30码", 299, 329, 200),
}
FIRST_SKU = next(iter(DEMO_SKUS))

# Values an operations team would enter, by field name; everything else comes from the schema.
FIELD_VALUES: dict[str, Any] = {
    "decision": "approve",
    "comment": "同意",
    "outcome": "ordered",
    "result": "approved",
    "verdict": "keep",
    "redo": "retouch",
    "fulfilment": "ship",
    "channel": "im",
    "sku": FIRST_SKU,
    "candidate_skus": [FIRST_SKU],
    "recommended_skus": [FIRST_SKU],
    "order_lines": [{"sku": FIRST_SKU, "quantity": 1}],
    "budget": 20000,
    "revenue_target": 3_000_000,
    "margin_target": 0.3,
    "online_price": 179,
    "offline_price": 199,
    "price": 179,
    "title": "纯棉圆领T恤 透气舒适",
    "new_title": "纯棉圆领T恤 透气",
    "main_images": [f"https://img.example.invalid/demo/{i}.jpg" for i in range(1, 6)],
    "sizes": ["800x800"],
    "order_id": "ORD-DEMO-0001",
    "quarter": "2027-Q1",
    "click_through_rate": 0.04,
    "commission_rate": 0.05,
    "quantity": 1,
    "stock": 100,
    "age_min": 18,
    "age_max": 35,
}


def _string(name: str, schema: dict[str, Any], now: datetime) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        if name.startswith("event_"):
            # A platform event that just ended, so the demo's effect tracking opens at once.
            return (date.today() - timedelta(days=1 if name.endswith("ends_on") else 2)).isoformat()
        return (date.today() + timedelta(days=7 if name.endswith(("ends_on", "deadline")) else 0)).isoformat()
    if fmt == "date-time":
        # Soon, so the demo's timers fire within a minute.
        return (now + timedelta(seconds=20)).isoformat()
    text = f"演示 {name}"
    return text[: schema.get("maxLength", 200)].ljust(schema.get("minLength", 0), "。")


def _number(schema: dict[str, Any]) -> float:
    low, high = schema.get("minimum", 0), schema.get("maximum")
    value = max(low, 1)
    if high is not None and value > high:
        value = (low + high) / 2
    return value


def sample_value(name: str, schema: dict[str, Any], *, now: datetime | None = None) -> Any:
    """Return a valid, realistic value for one field."""
    now = now or datetime.now(UTC)
    preferred = FIELD_VALUES.get(name)
    if "enum" in schema:
        # The same field name can mean different things in different forms (channel: im|sms vs ppc|…).
        return preferred if preferred in schema["enum"] else schema["enum"][0]
    if preferred is not None:
        return preferred
    kind = schema.get("type")
    if kind == "object":
        return sample_object(schema, now=now)
    if kind == "array":
        items = schema.get("items", {})
        count = max(schema.get("minItems", 1), 1)
        if items.get("type") == "object":
            return [sample_object(items, now=now) for _ in range(count)]
        return [sample_value("", items, now=now) for _ in range(count)]
    if kind == "integer":
        return int(_number(schema))
    if kind == "number":
        return _number(schema)
    if kind == "boolean":
        return True
    return _string(name, schema, now)


def sample_object(schema: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """Return data for every property of an object schema."""
    return {name: sample_value(name, prop, now=now) for name, prop in schema.get("properties", {}).items()}


def return_params(**overrides: Any) -> dict[str, Any]:
    """Return valid start params of an eligible returns_exchange (delivered two days ago)."""
    params = {
        "order_id": f"ORD-{uuid.uuid4().hex[:8]}",
        "sku": "SKU-TEE-001",
        "kind": "return",
        "reason": "尺码不合适",
        "category": "normal",
        "delivered_on": (date.today() - timedelta(days=2)).isoformat(),
        "amount": 199.0,
    }
    params.update(overrides)
    return params
