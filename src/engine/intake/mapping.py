"""A platform's mapping file: its export headers and wordings → the canonical records' fields and values.

One YAML per platform ships in intake/mappings/; a team's copy in <data dir>/mappings/<platform>.yaml replaces
it, and `--mapping FILE` replaces both for one import. A bad file is refused naming the key that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.intake.records import ORDER_STATUSES, PLATFORMS, REFUND_KINDS, REFUND_STATUSES

# The canonical fields a mapping may name per section; address_changed and risk_flag come from their columns.
FIELDS: dict[str, tuple[str, ...]] = {
    "orders": (
        "order_no",
        "platform_status",
        "status",
        "paid_amount",
        "ordered_at",
        "paid_at",
        "total_amount",
        "postage",
        "shop",
        "buyer_nick",
        "receiver_name",
        "receiver_phone",
        "address",
        "changed_address",
        "buyer_message",
        "seller_note",
        "risk_flag",
        "carrier",
        "tracking_no",
        "location",
        # Line columns, when the export has one row per line (JD).
        "sku",
        "title",
        "quantity",
        "price",
    ),
    "order_lines": ("order_no", "sku", "title", "quantity", "price"),
    "refunds": (
        "refund_no",
        "order_no",
        "kind",
        "platform_status",
        "status",
        "amount",
        "requested_at",
        "paid_amount",
        "sku",
        "title",
        "reason",
        "buyer_nick",
        "completed_at",
        "return_tracking",
    ),
    "reviews": ("review_id", "order_no", "rating", "reviewed_at", "sku", "title", "content", "buyer_nick"),
    # 生意参谋: the shop's daily export (no item columns) or the items' (商品ID per row).
    "traffic": ("day", "store", "item_id", "sku", "title", "visitors", "page_views", "paid_buyers", "paid_amount"),
    # 直通车/钻展 daily reports: per plan, or per creative of a plan (the 创意 report).
    "ads": ("day", "store", "plan", "creative_id", "creative", "impressions", "clicks", "spend", "gmv"),
}
# Fields read from the status column: a mapping names platform_status, and `status` is required through it.
STATUS_FROM = {"status": "platform_status"}


@dataclass(frozen=True)
class Section:
    """One export's mapping: columns per field, required fields, and the wordings of its coded values."""

    kind: str
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    statuses: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    ratings: dict[str, int] = field(default_factory=dict)
    lines_in_rows: bool = False

    def column_of(self, name: str) -> str:
        """The field's first header, for messages."""
        return self.columns.get(STATUS_FROM.get(name, name), (name,))[0]


@dataclass(frozen=True)
class Mapping:
    """A platform's mapping file, checked."""

    platform: str
    source: str
    timezone: ZoneInfo
    time_formats: tuple[str, ...]
    sections: dict[str, Section]
    # How the traffic and ad reports write a day (统计日期, 日期): 2026-11-01, 2026/11/01 or 20261101.
    day_formats: tuple[str, ...] = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")

    @property
    def iso_seconds(self) -> bool:
        """Whether the formats take 2026-11-01 09:00:00, which fromisoformat reads faster than strptime."""
        return "%Y-%m-%d %H:%M:%S" in self.time_formats

    def section(self, kind: str) -> Section:
        if kind not in self.sections:
            raise ValidationFailed(
                f"the {self.platform} mapping ({self.source}) has no {kind} section",
                problems=[
                    FieldProblem(field="kind", rule="mapped", message=f"{self.platform} {kind} exports are not mapped")
                ],
            )
        return self.sections[kind]


def normalise_wording(text: str) -> str:
    """Wordings compare with ASCII and full-width commas alike, and without spaces."""
    return text.replace(",", "，").replace(" ", "").replace("\u3000", "").strip()


def mapping_path(platform: str, *, data_dir: Path | None = None) -> tuple[Path | None, str]:
    """The team's copy in <data dir>/mappings/ if there is one, else the shipped file (None: read the package)."""
    if data_dir is not None:
        team = data_dir / "mappings" / f"{platform}.yaml"
        if team.is_file():
            return team, str(team)
    return None, f"ecomflow.engine.intake.mappings/{platform}.yaml"


def load_mapping(platform: str, *, path: Path | None = None, data_dir: Path | None = None) -> Mapping:
    """Load and check the platform's mapping: `path` if given, else the team's copy, else the shipped one."""
    if platform not in PLATFORMS:
        raise _bad("platform", "enum", f"unknown platform {platform!r}: one of {', '.join(PLATFORMS)}", "")
    if path is not None:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _bad("mapping", "readable", f"cannot read {path} ({exc.strerror})", source) from None
    else:
        found, source = mapping_path(platform, data_dir=data_dir)
        if found is not None:
            text = found.read_text(encoding="utf-8")
        else:
            text = resources.files("ecomflow.engine.intake.mappings").joinpath(f"{platform}.yaml").read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _bad("mapping", "yaml", f"not YAML ({exc})", source) from None
    return parse_mapping(data, source=source, platform=platform)


def parse_mapping(data: Any, *, source: str, platform: str) -> Mapping:
    """Check a mapping's data, naming the first wrong key."""
    if not isinstance(data, dict):
        raise _bad("mapping", "type", "the file must be a mapping of keys", source)
    if data.get("platform") != platform:
        raise _bad("platform", "equals", f"must be {platform!r}, the platform imported", source)
    zone = data.get("timezone", "Asia/Shanghai")
    try:
        timezone = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("timezone", "zone", f"{zone!r} is not a time zone", source) from None
    formats = data.get("time_formats")
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) and "%" in f for f in formats):
        raise _bad("time_formats", "list", "a list of strptime formats such as '%Y-%m-%d %H:%M:%S'", source)
    sections = {}
    for kind in FIELDS:
        if kind in data:
            sections[kind] = _section(kind, data[kind], source)
    days = data.get("day_formats", list(Mapping.day_formats))
    if not isinstance(days, list) or not days or not all(isinstance(f, str) and "%" in f for f in days):
        raise _bad("day_formats", "list", "a list of strptime formats such as '%Y-%m-%d'", source)
    unknown = set(data) - set(FIELDS) - {"platform", "timezone", "time_formats", "day_formats"}
    if unknown:
        raise _bad(sorted(unknown)[0], "known", f"not a key of a mapping ({', '.join(FIELDS)}, …)", source)
    if "orders" not in sections:
        raise _bad("orders", "required", "every platform maps its order export", source)
    return Mapping(platform, source, timezone, tuple(formats), sections, tuple(days))


def _section(kind: str, data: Any, source: str) -> Section:
    if not isinstance(data, dict):
        raise _bad(kind, "type", "a mapping with columns and required", source)
    columns_data = data.get("columns")
    if not isinstance(columns_data, dict) or not columns_data:
        raise _bad(f"{kind}.columns", "required", "field: [header, …] for each column read", source)
    columns: dict[str, tuple[str, ...]] = {}
    for name, given in columns_data.items():
        key = f"{kind}.columns.{name}"
        if name not in FIELDS[kind] or name in STATUS_FROM:
            raise _bad(key, "field", f"not a field of {kind}: one of {', '.join(FIELDS[kind])}", source)
        headers = [given] if isinstance(given, str) else given
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) and h for h in headers):
            raise _bad(key, "headers", "a header or a list of headers", source)
        columns[name] = tuple(h.strip() for h in headers)
    required = data.get("required", [])
    if not isinstance(required, list):
        raise _bad(f"{kind}.required", "list", "a list of fields", source)
    for name in required:
        if STATUS_FROM.get(name, name) not in columns:
            raise _bad(f"{kind}.required", "mapped", f"{name!r} is required but has no column", source)
    statuses = _wordings(kind, data, "statuses", source, allowed=_statuses_of(kind))
    kinds = _wordings(kind, data, "kinds", source, allowed=REFUND_KINDS if kind == "refunds" else ())
    ratings = _wordings(kind, data, "ratings", source, allowed=(1, 2, 3, 4, 5) if kind == "reviews" else ())
    if "platform_status" in columns and not statuses:
        raise _bad(f"{kind}.statuses", "required", "the status column's wordings → canonical statuses", source)
    if kind == "refunds" and "kind" in columns and not kinds:
        raise _bad("refunds.kinds", "required", "the kind column's wordings → refund kinds", source)
    if kind == "reviews" and not ratings:
        raise _bad("reviews.ratings", "required", "the rating column's wordings → 1 to 5", source)
    lines_in_rows = bool(data.get("lines_in_rows", False))
    if lines_in_rows and not {"title", "quantity", "price"} <= set(columns):
        raise _bad(f"{kind}.lines_in_rows", "columns", "rows that are lines need title, quantity and price", source)
    unknown = set(data) - {"columns", "required", "statuses", "kinds", "ratings", "lines_in_rows"}
    if unknown:
        raise _bad(f"{kind}.{sorted(unknown)[0]}", "known", "not a key of a mapping section", source)
    return Section(kind, columns, tuple(required), statuses, kinds, ratings, lines_in_rows)


def _statuses_of(kind: str) -> tuple[str, ...]:
    return {"orders": ORDER_STATUSES, "refunds": REFUND_STATUSES}.get(kind, ())


def _wordings(kind: str, data: dict[str, Any], key: str, source: str, *, allowed: tuple[Any, ...]) -> dict[str, Any]:
    values = data.get(key)
    if values is None:
        return {}
    if not allowed:
        raise _bad(f"{kind}.{key}", "known", f"{kind} has no {key}", source)
    if not isinstance(values, dict):
        raise _bad(f"{kind}.{key}", "type", "wording: canonical value, one per line", source)
    checked = {}
    for wording, value in values.items():
        if value not in allowed:
            raise _bad(
                f"{kind}.{key}.{wording}", "enum", f"{value!r} is not one of {', '.join(map(str, allowed))}", source
            )
        checked[normalise_wording(str(wording))] = value
    return checked


def _bad(key: str, rule: str, message: str, source: str) -> ValidationFailed:
    where = f"mapping {source}: " if source else ""
    return ValidationFailed(f"{where}{key}: {message}", problems=[FieldProblem(field=key, rule=rule, message=message)])
