"""Plausible form data from a step's JSON Schema, for the demo's simulated staff; small valid images for file fields."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

# Uploads a sample file for a field's rules (x-attachment) and returns the attachment id.
Attach = Callable[[str, bytes], str]

# A SKU of the sample catalogue (sample_catalog.csv, list price 199): what the demo's forms name.
FIRST_SKU = "TEE-WHT-M"

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
    # One product (款) with its two colours: the shoot makes one listing module for it.
    "products": [{"product": "DEMO-TEE", "skus": ["DEMO-TEE-WHITE-M", "DEMO-TEE-BLACK-L"]}],
    "order_lines": [{"sku": FIRST_SKU, "quantity": 1}],
    "budget": 20000,
    "revenue_target": 3_000_000,
    "margin_target": 0.3,
    # 10 % below the list price 199: a deviation the owner approves (the comment is the reason).
    "online_price": 179,
    "event_price": 179,
    # Listings keep to the list price.
    "price": 199,
    # A 满减 of 20 off 199, used about 100 times: 2,000 of the budget.
    "threshold": 199,
    "amount": 20,
    "expected_uses": 100,
    "title": "纯棉圆领T恤 透气舒适",
    "new_title": "纯棉圆领T恤 透气",
    "sizes": ["800x800"],
    "order_id": "ORD-DEMO-0001",
    "quarter": "2027-Q1",
    "click_through_rate": 0.04,
    # The first plan's creative in the sample 直通车 report (sample_figures.creative_id(1)): its CTR is the visual KPI.
    "ad_creative_id": "880001001",
    "commission_rate": 0.05,
    "quantity": 1,
    # A listing may not list more than the online warehouse has (the sample catalogue holds ~30 a variant there).
    "stock": 10,
    "shipping_template": "全国包邮 (偏远地区除外)",
    "dispatch_within_hours": 48,
    "age_min": 18,
    "age_max": 35,
}


# How many files a list of files gets when its schema asks for fewer (the listing check wants 5 main images).
FILE_COUNTS = {"main_images": 5}
# A minimal PDF: what a design-source field gets when it takes PDFs.
SAMPLE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n%%EOF\n"
)
# The start of an MP4 (an ftyp box): what a video field (the main-image video, 主图视频) gets.
SAMPLE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def sample_file(rules: dict[str, Any], *, placement: str | None = None, number: int = 0) -> tuple[str, bytes]:
    """Return a file name and bytes that pass a field's rules: a product on white at the size the rules ask for."""
    accept = rules.get("accept", [])
    if rules.get("kind") == "file" and "application/pdf" in accept:
        return f"design-{number}.pdf", SAMPLE_PDF
    if rules.get("kind") == "file" and accept == ["video/mp4"]:
        return f"video-{number}.mp4", SAMPLE_MP4
    width, height = max(rules.get("min_width", 0), 800), max(rules.get("min_height", 0), 800)
    if rules.get("square"):
        width = height = max(width, height)
    sizes = (rules.get("size_by") or {}).get("sizes", {})
    if placement in sizes:
        width, height = sizes[placement]
    image = Image.new("RGB", (width, height), (255, 255, 255))
    shade = (40 * number) % 200
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(200, shade, 60))
    jpeg = "image/jpeg" in accept or not accept
    out = io.BytesIO()
    image.save(out, "JPEG" if jpeg else "PNG", **({"quality": 85} if jpeg else {}))
    return f"sample-{number}.{'jpg' if jpeg else 'png'}", out.getvalue()


def _attachments(name: str, schema: dict[str, Any], attach: Attach, placement: str | None) -> Any:
    """Upload as many sample files as the field wants; return the id, or the list of ids."""
    if schema.get("type") == "array":
        rules = schema["items"]["x-attachment"]
        count = max(schema.get("minItems", 1), FILE_COUNTS.get(name, 1))
        count = min(count, schema.get("maxItems", count))
        return [attach(*sample_file(rules, placement=placement, number=n)) for n in range(count)]
    return attach(*sample_file(schema["x-attachment"], placement=placement))


def is_file_field(schema: dict[str, Any]) -> bool:
    """Tell whether a property of a form's schema holds attachment ids."""
    return "x-attachment" in schema or "x-attachment" in schema.get("items", {})


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


def sample_value(
    name: str, schema: dict[str, Any], *, now: datetime | None = None, attach: Attach | None = None
) -> Any:
    """Return a valid, realistic value for one field; file fields upload sample files through attach."""
    now = now or datetime.now(UTC)
    preferred = FIELD_VALUES.get(name)
    if "enum" in schema:
        # The same field name can mean different things in different forms (channel: im|sms vs ppc|…).
        return preferred if preferred in schema["enum"] else schema["enum"][0]
    if preferred is not None:
        return preferred
    kind = schema.get("type")
    if kind == "object":
        return sample_object(schema, now=now, attach=attach)
    if kind == "array":
        items = schema.get("items", {})
        count = max(schema.get("minItems", 1), 1)
        if items.get("type") == "object":
            return [sample_object(items, now=now, attach=attach) for _ in range(count)]
        return [sample_value("", items, now=now, attach=attach) for _ in range(count)]
    if kind == "integer":
        return int(_number(schema))
    if kind == "number":
        return _number(schema)
    if kind == "boolean":
        return True
    return _string(name, schema, now)


def sample_object(
    schema: dict[str, Any], *, now: datetime | None = None, attach: Attach | None = None
) -> dict[str, Any]:
    """Return data for every property of an object schema; file fields only when attach can upload files."""
    properties = schema.get("properties", {})
    data = {
        name: sample_value(name, prop, now=now, attach=attach)
        for name, prop in properties.items()
        if not is_file_field(prop)
    }
    for name, prop in properties.items():
        if is_file_field(prop) and attach is not None:
            # A banner's size follows its placement, a sibling already filled in.
            size_by = (prop.get("items", prop).get("x-attachment") or {}).get("size_by") or {}
            data[name] = _attachments(name, prop, attach, data.get(size_by.get("field", "")))
    return {name: data[name] for name in properties if name in data}


def return_params(**overrides: Any) -> dict[str, Any]:
    """Return valid start params of an eligible returns_exchange (delivered two days ago)."""
    params = {
        "order_id": f"ORD-{uuid.uuid4().hex[:8]}",
        "sku": "SKU-TEE-001",
        "kind": "return_refund",
        "cause": "no_reason",
        "reason": "尺码不合适",
        "category": "normal",
        "delivered_on": (date.today() - timedelta(days=2)).isoformat(),
        "amount": 199.0,
    }
    params.update(overrides)
    return params


def sample_catalogue_path() -> Path:
    """Return the sample catalogue CSV shipped with the package."""
    return Path(str(files("ecomflow").joinpath("sample_catalog.csv")))
