"""Forms of flows.yaml: compile them to JSON Schema (Draft 2020-12) and check submitted data.

`compile_form` turns `{fields: {...}}` into a frozen `FormSpec`; `validate_form` returns one
`FieldProblem` per broken rule (never raises on bad data), so the API can report every field.
A malformed form raises FormDefinitionError (engine/errors.py), carrying every problem found.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError

from ecomflow.engine.definitions.file_fields import (
    FILE_KEYS,
    FILE_KINDS,
    IMAGE_KEYS,
    check_size_by,
    compile_file_attrs,
    file_schema,
)
from ecomflow.engine.errors import FormDefinitionError

__all__ = [
    "FIELD_TYPES",
    "FieldProblem",
    "FieldSpec",
    "FormSpec",
    "Label",
    "compile_form",
    "parse_label",
    "validate_form",
]

FIELD_TYPES = (
    "string",
    "text",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "enum",
    "list",
    "object",
    *FILE_KINDS,
)
DEFAULT_MAX_LENGTH = {"string": 200, "text": 5000}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

_COMMON_KEYS = frozenset({"type", "required", "label"})
_TYPE_KEYS: dict[str, frozenset[str]] = {
    "string": frozenset({"min_length", "max_length", "max_bytes", "pattern"}),
    "text": frozenset({"min_length", "max_length", "max_bytes", "pattern"}),
    "integer": frozenset({"min", "max"}),
    "number": frozenset({"min", "max"}),
    "boolean": frozenset(),
    "date": frozenset(),
    "datetime": frozenset(),
    "enum": frozenset({"values"}),
    "list": frozenset({"items", "min_items", "max_items"}),
    "object": frozenset({"fields"}),
    "file": FILE_KEYS,
    "image": IMAGE_KEYS,
}
_DECISION_FIELDS = {
    "decision": {
        "type": "enum",
        "values": ["approve", "reject"],
        "required": True,
        "label": {"zh": "审批结果", "en": "Decision"},
    },
    "comment": {"type": "text", "label": {"zh": "审批意见", "en": "Comment"}},
}
_REJECT_REASON = "when decision is reject"
_DECISIVE_RULES = ("type", "required")
_JSON_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}
_FORMAT_WORDS = {
    "date": "a valid date such as 2025-05-01",
    "date-time": "a valid date-time such as 2025-05-01T20:00:00+08:00",
    "uuid": "an attachment id from POST /attachments",
}


@dataclass(frozen=True)
class Label:
    """A name shown to people, in Chinese and English."""

    zh: str
    en: str


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form; `attrs` holds its effective constraints (max_length, values, ...)."""

    name: str
    type: str
    label: Label
    required: bool
    attrs: Mapping[str, Any]
    items: FieldSpec | None = None
    fields: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class FormSpec:
    """A compiled form: its fields and their JSON Schema (treat the schema as read-only)."""

    fields: tuple[FieldSpec, ...]
    json_schema: Mapping[str, Any]

    @cached_property
    def validator(self) -> Draft202012Validator:
        """Return the schema's validator, built once (validation runs on every task completion)."""
        return FormValidator(self.json_schema, format_checker=_FORMATS)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Return the top-level field names in definition order."""
        return tuple(f.name for f in self.fields)

    def get_field(self, name: str) -> FieldSpec:
        """Return the top-level field called `name`."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"form has no field {name!r} (fields: {', '.join(self.field_names) or 'none'})")


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule of submitted data: the field's path, the rule's name and a sentence."""

    field: str
    rule: str
    message: str


# ── formats ──────────────────────────────────────────────────────────────────────
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


@_FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value)
    return True


# ── byte length (x-maxBytes) ─────────────────────────────────────────────────────
# JSON Schema counts characters; a marketplace counts a title in bytes, a wide (CJK) character as 2.
MAX_BYTES_KEYWORD = "x-maxBytes"


def text_bytes(text: str) -> int:
    """Return a text's length as the marketplace counts it: wide characters (CJK, full-width) count 2."""
    # W and F cover CJK ideographs, kana, hangul and full-width punctuation such as ，and 【】.
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text)


def _max_bytes(validator: Any, limit: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
    if isinstance(instance, str) and text_bytes(instance) > limit:
        yield ValidationError(f"{instance!r} is {text_bytes(instance)} bytes; the limit is {limit}")


# The form validator: Draft 2020-12 plus x-maxBytes (the schema stays valid 2020-12: unknown keywords are annotations).
FormValidator = validators.extend(Draft202012Validator, {MAX_BYTES_KEYWORD: _max_bytes})


# ── compiling ────────────────────────────────────────────────────────────────────
def parse_label(raw: Any, where: str, problems: list[str]) -> Label | None:
    """Read `{zh, en}` from raw, noting what is missing; None when unusable."""
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with zh and en labels, got {_describe(raw)}")
        return None
    texts = {}
    for lang in ("zh", "en"):
        text = raw.get(lang)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.{lang}: a non-empty {lang} label is required")
        texts[lang] = text
    if any(not isinstance(t, str) or not t.strip() for t in texts.values()):
        return None
    return Label(zh=texts["zh"], en=texts["en"])


def compile_form(raw: Any, *, where: str, approval: bool = False) -> FormSpec:
    """Compile a `{fields: {...}}` mapping (None = no fields) into a FormSpec, or raise FormDefinitionError."""
    problems: list[str] = []
    raw_fields: Any = {}
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise FormDefinitionError([f"{where}: expected a mapping with 'fields', got {_describe(raw)}"])
        for key in raw:
            if key != "fields":
                problems.append(f"{where}: unknown key {key!r} (allowed: fields)")
        raw_fields = raw.get("fields", {})
        if raw_fields is None:
            raw_fields = {}
    if approval and isinstance(raw_fields, Mapping):
        for name in _DECISION_FIELDS:
            if name in raw_fields:
                problems.append(f"{where}.fields.{name}: an approval form defines {name} itself; choose another name")
        raw_fields = {**_DECISION_FIELDS, **{k: v for k, v in raw_fields.items() if k not in _DECISION_FIELDS}}
    fields = _compile_fields(raw_fields, f"{where}.fields", problems)
    if problems:
        raise FormDefinitionError(problems)
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **_object_schema(fields)}
    if approval:
        # A rejection must say why: the comment is what the reworking author reads.
        schema["if"] = {"properties": {"decision": {"const": "reject"}}, "required": ["decision"]}
        schema["then"] = {
            "required": ["comment"],
            "x-reason": _REJECT_REASON,
            "properties": {"comment": {"minLength": 1, "x-reason": _REJECT_REASON}},
        }
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise FormDefinitionError([f"{where}: compiled to an invalid JSON Schema: {exc.message}"]) from None
    return FormSpec(fields=fields, json_schema=schema)


def _compile_fields(raw: Any, where: str, problems: list[str]) -> tuple[FieldSpec, ...]:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping of field name to field spec, got {_describe(raw)}")
        return ()
    compiled = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            problems.append(f"{where}.{name}: field names are lower_snake_case ([a-z][a-z0-9_]*)")
            continue
        result = _compile_field(name, spec, f"{where}.{name}", problems)
        if result is not None:
            compiled.append(result)
    check_size_by(tuple(compiled), where, problems)
    return tuple(compiled)


def _compile_field(
    name: str, raw: Any, where: str, problems: list[str], *, list_label: Label | None = None
) -> FieldSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a field spec mapping with a type, got {_describe(raw)}")
        return None
    kind = raw.get("type")
    if kind not in FIELD_TYPES:
        what = "a type is required" if kind is None else f"unknown type {kind!r}"
        problems.append(f"{where}: {what} (expected one of {', '.join(FIELD_TYPES)})")
        return None
    before = len(problems)
    allowed = _COMMON_KEYS | _TYPE_KEYS[kind]
    for key in raw:
        if key not in allowed:
            problems.append(f"{where}: unknown key {key!r} for {kind} fields (allowed: {', '.join(sorted(allowed))})")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        problems.append(f"{where}.required: expected true or false, got {_describe(required)}")
    if list_label is not None and "label" not in raw:
        label: Label | None = list_label  # a list's items are labelled by the list
    else:
        label = parse_label(raw.get("label"), f"{where}.label", problems)
    attrs = _compile_attrs(kind, raw, where, problems)
    items = None
    fields: tuple[FieldSpec, ...] = ()
    if kind == "list":
        if "items" not in raw:
            problems.append(f"{where}: a list field needs 'items' (a field spec)")
        else:
            items = _compile_field(
                f"{name}[]", raw["items"], f"{where}.items", problems, list_label=label or Label(zh=name, en=name)
            )
    elif kind == "object":
        fields = _compile_fields(raw.get("fields"), f"{where}.fields", problems)
        if not fields and len(problems) == before:
            problems.append(f"{where}: an object field needs at least one field")
    if len(problems) > before or label is None:
        return None
    return FieldSpec(
        name=name,
        type=kind,
        label=label,
        required=bool(required),
        attrs=MappingProxyType(attrs),
        items=items,
        fields=fields,
    )


def _compile_attrs(kind: str, raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if kind in ("string", "text"):
        attrs["max_length"] = raw.get("max_length", DEFAULT_MAX_LENGTH[kind])
        if "max_bytes" in raw:
            attrs["max_bytes"] = raw["max_bytes"]
            _check_bounds(attrs, "max_bytes", "max_bytes", where, problems, integer=True, minimum=1)
        if "min_length" in raw or raw.get("required") is True:
            # A required text must say something: "" counts as missing.
            attrs["min_length"] = raw.get("min_length", 1)
        _check_bounds(attrs, "min_length", "max_length", where, problems, integer=True, minimum=0)
        if "pattern" in raw:
            pattern = raw["pattern"]
            try:
                re.compile(pattern)
                attrs["pattern"] = pattern
            except (re.error, TypeError, OverflowError, RecursionError) as exc:
                problems.append(f"{where}.pattern: not a valid regular expression ({exc})")
    elif kind in ("integer", "number"):
        attrs.update({k: raw[k] for k in ("min", "max") if k in raw})
        _check_bounds(attrs, "min", "max", where, problems, integer=kind == "integer", minimum=None)
    elif kind == "enum":
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            problems.append(f"{where}.values: an enum needs a non-empty list of values")
        elif not all(isinstance(v, str) and v for v in values):
            bad = ", ".join(repr(v) for v in values if not isinstance(v, str) or not v)
            problems.append(
                f"{where}.values: values must be non-empty strings, got {bad} (quote yes/no/on/off in YAML)"
            )
        elif len(set(values)) != len(values):
            problems.append(f"{where}.values: values must be unique")
        else:
            attrs["values"] = tuple(values)
    elif kind in FILE_KINDS:
        attrs.update(compile_file_attrs(kind, raw, where, problems))
    elif kind == "list":
        attrs.update({k: raw[k] for k in ("min_items", "max_items") if k in raw})
        _check_bounds(attrs, "min_items", "max_items", where, problems, integer=True, minimum=0)
    return attrs


def _check_bounds(
    attrs: dict[str, Any], low: str, high: str, where: str, problems: list[str], *, integer: bool, minimum: int | None
) -> None:
    for key in (low, high):
        if key not in attrs:
            continue
        value = attrs[key]
        numeric = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
        if not numeric:
            expected = "an integer" if integer else "a number"
            problems.append(f"{where}.{key}: expected {expected}, got {_describe(value)}")
            attrs.pop(key)
        elif minimum is not None and value < minimum:
            problems.append(f"{where}.{key}: must be at least {minimum}, got {value}")
    if low in attrs and high in attrs and attrs[low] > attrs[high]:
        problems.append(f"{where}: {low} ({attrs[low]}) is greater than {high} ({attrs[high]})")


def _object_schema(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: _field_schema(f) for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


_SCHEMA_KEYWORDS = {
    "min_length": "minLength",
    "max_length": "maxLength",
    "pattern": "pattern",
    "min": "minimum",
    "max": "maximum",
    "min_items": "minItems",
    "max_items": "maxItems",
    "max_bytes": MAX_BYTES_KEYWORD,
}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.type in FILE_KINDS:
        schema = file_schema(spec.type, spec.attrs)
    elif spec.type == "object":
        schema = _object_schema(spec.fields)
    elif spec.type == "list":
        assert spec.items is not None
        schema = {"type": "array", "items": _field_schema(spec.items)}
    elif spec.type == "enum":
        schema = {"type": "string", "enum": list(spec.attrs["values"])}
    elif spec.type in ("date", "datetime"):
        schema = {"type": "string", "format": "date" if spec.type == "date" else "date-time"}
    else:
        schema = {"type": {"text": "string"}.get(spec.type, spec.type)}
    for key, keyword in _SCHEMA_KEYWORDS.items():
        if key in spec.attrs:
            schema[keyword] = spec.attrs[key]
    schema["title"] = spec.label.zh
    schema["x-label"] = {"zh": spec.label.zh, "en": spec.label.en}
    return schema


# ── validating ───────────────────────────────────────────────────────────────────
def validate_form(form: FormSpec, data: Any) -> list[FieldProblem]:
    """Return every rule `data` breaks (sorted by field), or [] when it is valid."""
    if not isinstance(data, Mapping):
        return [FieldProblem("", "type", f"the form data must be an object, got {_describe(data)}")]
    found: dict[tuple[str, str], tuple[tuple[Any, ...], FieldProblem]] = {}
    for error in form.validator.iter_errors(dict(data)):
        for path, problem in _problems_from(error):
            found.setdefault((problem.field, problem.rule), (path, problem))
    # A missing, empty or mistyped value breaks its other rules too; report that alone.
    decisive = {name for name, rule in found if rule in _DECISIVE_RULES}
    kept = [(path, p) for (name, rule), (path, p) in found.items() if rule in _DECISIVE_RULES or name not in decisive]
    kept.sort(key=lambda pair: (tuple((isinstance(part, int), part) for part in pair[0]), pair[1].rule))
    return [problem for _, problem in kept]


def _problems_from(error: ValidationError) -> list[tuple[tuple[Any, ...], FieldProblem]]:
    path = tuple(error.absolute_path)
    name = _field_path(path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        reason = error.schema.get("x-reason") if isinstance(error.schema, Mapping) else None
        suffix = f" {reason}" if reason else ""
        return [
            (
                (*path, missing),
                FieldProblem(
                    _field_path((*path, missing)), "required", f"{_field_path((*path, missing))} is required{suffix}"
                ),
            )
            for missing in value
            if missing not in instance
        ]
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        return [
            (
                (*path, extra),
                FieldProblem(
                    _field_path((*path, extra)),
                    "unknown_field",
                    f"{_field_path((*path, extra))} is not a field of this form",
                ),
            )
            for extra in instance
            if extra not in known
        ]
    if kind == "minLength" and instance == "" and value == 1:
        reason = error.schema.get("x-reason") if isinstance(error.schema, Mapping) else None
        suffix = f" {reason}" if reason else ""
        return [(path, FieldProblem(name, "required", f"{name} must not be empty{suffix}"))]
    rule, message = _describe_error(name, kind, value, instance)
    return [(path, FieldProblem(name, rule, message))]


def _describe_error(name: str, kind: str, value: Any, instance: Any) -> tuple[str, str]:
    if kind == "type":
        return "type", f"{name} must be {_JSON_TYPE_WORDS.get(value, value)}, got {_describe(instance)}"
    if kind == "enum":
        return "enum", f"{name} must be one of {', '.join(str(v) for v in value)}"
    if kind == "minimum":
        return "min", f"{name} must be at least {_number(value)}"
    if kind == "maximum":
        return "max", f"{name} must be at most {_number(value)}"
    if kind == "minLength":
        return "min_length", f"{name} must be at least {value} characters long"
    if kind == "maxLength":
        return "max_length", f"{name} must be at most {value} characters long (got {len(instance)})"
    if kind == MAX_BYTES_KEYWORD:
        return (
            "max_bytes",
            f"{name} must be at most {value} bytes, a CJK character counting 2 (got {text_bytes(instance)})",
        )
    if kind == "pattern":
        return "pattern", f"{name} must match the pattern {value}"
    if kind == "format":
        return "format", f"{name} must be {_FORMAT_WORDS.get(value, f'a valid {value}')}"
    if kind == "minItems":
        return "min_items", f"{name} must have at least {value} item{'s' if value != 1 else ''}"
    if kind == "maxItems":
        return "max_items", f"{name} must have at most {value} item{'s' if value != 1 else ''}"
    if kind == "uniqueItems":
        return "unique", f"{name} names the same file twice"
    return str(kind), f"{name} breaks the {kind} rule"


def _field_path(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__
