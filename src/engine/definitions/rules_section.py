"""Validate the shared `rules` section of flows.yaml against the JSON schema the engine relies on."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator

from ecomflow.engine.definitions.durations import DURATION

__all__ = ["RULES_SCHEMA", "read_rules"]

_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_DURATION_SCHEMA = {"type": "string", "pattern": DURATION.pattern}
_POSITIVE_INT = {"type": "integer", "minimum": 1}
_TEXT = {"type": "string", "minLength": 1}
_HHMM = "([01][0-9]|2[0-3]):[0-5][0-9]"
_SIZE = {"type": "array", "items": _POSITIVE_INT, "minItems": 2, "maxItems": 2}


def _strict(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


# Rules the engine reads; extra rules are allowed (flows may read their own).
RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "banned_terms",
        "price_policy",
        "owner_approval_above",
        "currency",
        "sms",
        "listing",
        "returns",
        "target_weights",
    ],
    "properties": {
        "banned_terms": {"type": "array", "items": _TEXT, "minItems": 1, "uniqueItems": True},
        "price_policy": _strict(
            default={"enum": ["unified", "flexible"]},
            red_line={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            max_online_discount={"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        ),
        "owner_approval_above": {"type": "number", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "sms": _strict(max_chars=_POSITIVE_INT, opt_out=_TEXT),
        "listing": _strict(title_max_bytes=_POSITIVE_INT, min_main_images=_POSITIVE_INT),
        "returns": _strict(
            no_reason_days=_POSITIVE_INT,
            excluded_categories={"type": "array", "items": _TEXT},
            parcel_wait=_DURATION_SCHEMA,
            refund_within=_DURATION_SCHEMA,
            bad_rating_at_most={"type": "integer", "minimum": 1, "maximum": 5},
        ),
        "target_weights": _strict(
            months={"type": "array", "items": _FRACTION, "minItems": 3, "maxItems": 3},
            departments={"type": "object", "additionalProperties": _FRACTION},
        ),
        "peak_hours": {"type": "array", "items": {"type": "string", "pattern": f"^{_HHMM}-{_HHMM}$"}},
        # Image fields read these through YAML anchors; their shape is checked again as field rules.
        "images": {
            "type": "object",
            "properties": {
                "main_image": {"type": "object"},
                "white_background": _strict(
                    level={"type": "integer", "minimum": 0, "maximum": 255},
                    share={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                ),
                "banner_sizes": {"type": "object", "additionalProperties": _SIZE},
            },
        },
    },
}
_RULES_VALIDATOR = Draft202012Validator(RULES_SCHEMA)


def read_rules(raw: Any, roles: Collection[str], problems: list[str]) -> Mapping[str, Any]:
    """Validate `raw` against RULES_SCHEMA and the declared `roles`; return it frozen, appending to `problems`."""
    if not isinstance(raw, Mapping):
        problems.append(f"rules: expected a mapping of rule name to parameters, got {type(raw).__name__}")
        return MappingProxyType({})
    errors = sorted(_RULES_VALIDATOR.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        problems.append(f"{'.'.join(['rules', *map(str, error.absolute_path)])}: {error.message}")
    if not errors:
        weights = raw["target_weights"]
        for name, values in (("months", weights["months"]), ("departments", list(weights["departments"].values()))):
            if not math.isclose(sum(values), 1.0, abs_tol=1e-9):
                problems.append(f"rules.target_weights.{name}: weights must sum to 1, they sum to {sum(values):g}")
        for role in weights["departments"]:
            if role not in roles:
                problems.append(f"rules.target_weights.departments.{role}: not a declared role")
    return _freeze(raw)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value
