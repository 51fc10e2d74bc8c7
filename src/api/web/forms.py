"""Task forms on the web: widgets from a step's form, posted HTML fields back to form data, problems in words.

Field names in the HTML are the engine's field paths (``campaigns[0].theme``), so a FieldProblem
lands next to the input it is about. Rows of a list are renumbered from 0 when read, and the
page is re-rendered from what was read, so paths and inputs always agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from ecomflow.api.web.file_views import ATTACHMENTS, FileView
from ecomflow.api.web.i18n import Translator
from ecomflow.engine.definitions.file_fields import FILE_KINDS
from ecomflow.engine.definitions.forms import FieldProblem, FieldSpec, FormSpec
from ecomflow.engine.files.content_types import BY_MEDIA_TYPE
from ecomflow.engine.files.incoming import describe_size

DECISION = "decision"
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_LOCAL_MINUTES = "%Y-%m-%dT%H:%M"
_MAX_ROW_INDEX_DIGITS = 4


@dataclass
class Widget:
    """One input (or group of inputs) of a task form, with its current value and its problems."""

    kind: str
    name: str
    label: str
    required: bool
    value: Any = ""
    errors: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    children: list[Widget] = field(default_factory=list)
    rows: list[Widget] = field(default_factory=list)
    blank_row: Widget | None = None
    # The placeholders the blank row's names and labels carry until a script gives them a row number.
    index_token: str = ""
    number_token: str = ""

    @property
    def dom_id(self) -> str:
        """Return the element id of the input."""
        return dom_id_of(self.name)

    @property
    def error_id(self) -> str:
        """Return the id of the element holding the widget's problems."""
        return f"{self.dom_id}-error"


@dataclass(frozen=True)
class FormView:
    """A form ready to render: its widgets, every problem for the summary, and the decision's problems."""

    widgets: list[Widget]
    summary: list[tuple[str, str]]
    decision_errors: list[str]


# ── paths ────────────────────────────────────────────────────────────────────────
def dom_id_of(path: str) -> str:
    """Return the element id of a field path's input."""
    return "f-" + re.sub(r"[^A-Za-z0-9_]", "-", path)


def path_parts(path: str) -> list[str | int]:
    """Split a field path into names and row indexes: campaigns[0].theme → campaigns, 0, theme."""
    return [int(index) if index else name for name, index in _PATH_PART.findall(path)]


def spec_at(form: FormSpec, path: str) -> FieldSpec | None:
    """Return the field a path points at (a row index selects the list's item field), or None."""
    fields: Sequence[FieldSpec] = form.fields
    found: FieldSpec | None = None
    for part in path_parts(path):
        if isinstance(part, int):
            if found is None or found.items is None:
                return None
            found = found.items
            fields = found.fields
            continue
        found = next((f for f in fields if f.name == part), None)
        if found is None:
            return None
        fields = found.fields
    return found


def path_label(form: FormSpec, path: str, t: Translator) -> str:
    """Name a path in words: 主题活动 · 第 1 行 · 预算 (元)."""
    words: list[str] = []
    fields: Sequence[FieldSpec] = form.fields
    current: FieldSpec | None = None
    for part in path_parts(path):
        if isinstance(part, int):
            words.append(t("form.row", number=part + 1))
            current = current.items if current is not None else None
            fields = current.fields if current is not None else ()
            continue
        current = next((f for f in fields if f.name == part), None)
        words.append(t.label(current.label) if current is not None else part)
        fields = current.fields if current is not None else ()
    return " · ".join(words) or t("form.whole_form")


# ── problems in words ────────────────────────────────────────────────────────────
def problem_text(form: FormSpec, problem: FieldProblem, t: Translator) -> str:
    """Say what is wrong with a field in the page's language; unknown rules keep the engine's sentence."""
    spec = spec_at(form, problem.field)
    attrs = spec.attrs if spec is not None else {}
    kind = spec.type if spec is not None else ""
    rule = problem.rule
    if rule == "required" and problem.field == "comment" and _is_approval(form):
        return t("rule.required_to_reject")
    if rule == "type":
        return t.get(f"rule.type.{kind}", t("rule.type"))
    if rule == "format":
        return t.get(f"rule.format.{kind}", t("rule.format.date"))
    limit_of = {
        "min": "min",
        "max": "max",
        "min_length": "min_length",
        "max_length": "max_length",
        "min_items": "min_items",
        "max_items": "max_items",
        "max_bytes": "max_bytes",
        "pattern": "pattern",
    }
    if rule in limit_of and limit_of[rule] in attrs:
        return t(f"rule.{rule}", limit=_plain_number(attrs[limit_of[rule]]))
    return t.get(f"rule.{rule}", problem.message)


def _is_approval(form: FormSpec) -> bool:
    spec = spec_at(form, DECISION)
    return spec is not None and spec.type == "enum" and set(spec.attrs.get("values", ())) == {"approve", "reject"}


def _plain_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# ── widgets ──────────────────────────────────────────────────────────────────────
def build_form_view(
    form: FormSpec,
    *,
    values: Mapping[str, Any],
    problems: Sequence[FieldProblem],
    t: Translator,
    zone: ZoneInfo,
    approval: bool,
    files: Mapping[str, FileView] | None = None,
) -> FormView:
    """Return the widgets of a form filled with values, each with its own problems, and the summary of all.

    `files` describes the attachments the values name, so uploaded files show as thumbnails again.
    """
    by_path: dict[str, list[str]] = {}
    summary = []
    for problem in problems:
        text = problem_text(form, problem, t)
        by_path.setdefault(problem.field, []).append(text)
        summary.append(
            (dom_id_of(problem.field), t("form.problem_line", field=path_label(form, problem.field, t), problem=text))
        )
    builder = _WidgetBuilder(t=t, zone=zone, errors=by_path, files=files or {})
    widgets = [
        builder.widget(spec, spec.name, values.get(spec.name), depth=0)
        for spec in form.fields
        if not (approval and spec.name == DECISION)
    ]
    return FormView(widgets=widgets, summary=summary, decision_errors=by_path.get(DECISION, []) if approval else [])


@dataclass
class _WidgetBuilder:
    t: Translator
    zone: ZoneInfo
    errors: dict[str, list[str]]
    files: Mapping[str, FileView] = field(default_factory=dict)

    def widget(self, spec: FieldSpec, name: str, value: Any, *, depth: int, label: str | None = None) -> Widget:
        shown = label if label is not None else self.t.label(spec.label)
        widget = Widget(
            kind=spec.type, name=name, label=shown, required=spec.required, errors=self.errors.get(name, [])
        )
        if spec.type in FILE_KINDS:
            self._fill_files(widget, spec, value)
        elif spec.type == "object":
            source = value if isinstance(value, Mapping) else {}
            widget.children = [
                self.widget(child, f"{name}.{child.name}", source.get(child.name), depth=depth) for child in spec.fields
            ]
        elif spec.type == "list":
            self._fill_list(widget, spec, value, depth=depth)
        else:
            self._fill_scalar(widget, spec, value)
        return widget

    def _fill_scalar(self, widget: Widget, spec: FieldSpec, value: Any) -> None:
        attrs = spec.attrs
        if spec.type in ("string", "text"):
            widget.kind = "textarea" if spec.type == "text" else "text"
            widget.value = "" if value is None else str(value)
            widget.limits = {"maxlength": attrs.get("max_length"), "max_bytes": attrs.get("max_bytes")}
            if "max_bytes" in attrs:
                widget.hint = self.t("form.hint.max_bytes", limit=attrs["max_bytes"])
        elif spec.type in ("integer", "number"):
            widget.value = "" if value is None or isinstance(value, bool) else str(_plain_number(value))
            widget.limits = {"min": attrs.get("min"), "max": attrs.get("max")}
            if "min" in attrs and "max" in attrs:
                widget.hint = self.t(
                    "form.hint.between", low=_plain_number(attrs["min"]), high=_plain_number(attrs["max"])
                )
        elif spec.type == "boolean":
            widget.value = value is True
        elif spec.type == "date":
            widget.value = "" if value is None else str(value)
        elif spec.type == "datetime":
            widget.value = _local_minutes(value, self.zone)
            widget.hint = self.t("form.hint.timezone", zone=self.zone.key)
        elif spec.type == "enum":
            widget.kind = "select"
            widget.value = "" if value is None else str(value)
            widget.options = [(v, self.t.get(f"enum.{v}", v)) for v in attrs["values"]]

    def _fill_files(self, widget: Widget, spec: FieldSpec, value: Any) -> None:
        """A drop zone: the files already uploaded (as thumbnails), the rules in words, how many it takes."""
        attrs = spec.attrs
        ids = value if isinstance(value, list) else [value] if isinstance(value, str) and value else []
        widget.kind = "files"
        widget.value = [
            self.files.get(i) or FileView(i, i, f"{ATTACHMENTS}/{i}", None) for i in ids if isinstance(i, str)
        ]
        widget.limits = {
            "multiple": attrs["multiple"],
            "max_files": attrs.get("max_files", 1 if not attrs["multiple"] else ""),
            "accept": ",".join(attrs["accept"]),
        }
        widget.hint = file_hint(attrs, self.t)

    def _fill_list(self, widget: Widget, spec: FieldSpec, value: Any, *, depth: int) -> None:
        items = spec.items
        assert items is not None
        attrs = spec.attrs
        if "min_items" in attrs and "max_items" in attrs:
            widget.hint = self.t("form.hint.items_between", low=attrs["min_items"], high=attrs["max_items"])
        elif "min_items" in attrs:
            widget.hint = self.t("form.hint.items_at_least", low=attrs["min_items"])
        if items.type == "enum":
            widget.kind = "checkboxes"
            widget.value = [str(v) for v in value] if isinstance(value, list) else []
            widget.options = [(v, self.t.get(f"enum.{v}", v)) for v in items.attrs["values"]]
            return
        rows = value if isinstance(value, list) else []
        if not rows:
            # A required list starts with as many empty rows as it needs; an optional one with none.
            rows = [None] * (max(attrs.get("min_items", 1), 1) if spec.required else 0)
        widget.index_token, widget.number_token = f"__I{depth}__", f"__N{depth}__"
        widget.rows = [
            self.widget(items, f"{widget.name}[{i}]", row, depth=depth + 1, label=f"{widget.label} {i + 1}")
            for i, row in enumerate(rows)
        ]
        widget.blank_row = self.widget(
            items,
            f"{widget.name}[{widget.index_token}]",
            None,
            depth=depth + 1,
            label=f"{widget.label} {widget.number_token}",
        )


def file_hint(attrs: Mapping[str, Any], t: Translator) -> str:
    """Say a file field's rules in words: types, size, pixels, square, white background, how many."""
    types = "/".join(BY_MEDIA_TYPE[m].name.split()[0] if m in BY_MEDIA_TYPE else m for m in attrs["accept"])
    parts = [t("file.hint.types", types=types)]
    if attrs.get("max_size"):
        parts.append(t("file.hint.max_size", size=describe_size(attrs["max_size"])))
    if attrs.get("min_width") or attrs.get("min_height"):
        parts.append(t("file.hint.min_size", width=attrs.get("min_width", 1), height=attrs.get("min_height", 1)))
    if attrs.get("square"):
        parts.append(t("file.hint.square"))
    if attrs.get("white_background"):
        parts.append(t("file.hint.white"))
    if attrs.get("size_by"):
        sizes = ", ".join(f"{t.get(f'enum.{k}', k)} {w}×{h}" for k, (w, h) in attrs["size_by"]["sizes"].items())
        parts.append(t("file.hint.size_by", sizes=sizes))
    if attrs["multiple"]:
        parts.append(t("file.hint.count", low=attrs.get("min_files", 0), high=attrs.get("max_files", "∞")))
    return t("value.separator").join(parts)


def _local_minutes(value: Any, zone: ZoneInfo) -> str:
    """Show a stored date-time in a datetime-local input: the team's wall time to the minute."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return moment.strftime(_LOCAL_MINUTES)


# ── reading a posted form ────────────────────────────────────────────────────────
def read_submission(form: FormSpec, posted: FormData, *, zone: ZoneInfo) -> dict[str, Any]:
    """Turn posted fields into form data; text that is no number stays text, so the engine names the field."""
    reader = _SubmissionReader(posted=posted, zone=zone)
    values = {spec.name: reader.read(spec, spec.name, in_row=False) for spec in form.fields}
    return {name: value for name, value in values.items() if value is not None}


@dataclass
class _SubmissionReader:
    posted: FormData
    zone: ZoneInfo

    def read(self, spec: FieldSpec, name: str, *, in_row: bool) -> Any:
        """Return the field's value, or None when nothing was entered."""
        if spec.type == "object":
            values = {child.name: self.read(child, f"{name}.{child.name}", in_row=in_row) for child in spec.fields}
            entered = {key: value for key, value in values.items() if value is not None}
            if not _is_blank(entered):
                return entered
            # An empty row is dropped; an empty required group still goes in, so each of its fields is named.
            return {} if spec.required and not in_row else None
        if spec.type == "list":
            return self._read_list(spec, name)
        if spec.type in FILE_KINDS:
            ids = [v.strip() for v in self.posted.getlist(name) if isinstance(v, str) and v.strip()]
            if spec.attrs["multiple"]:
                return ids or None
            return ids[0] if ids else None
        if spec.type == "boolean":
            sent = self.posted.getlist(name)
            return "true" in sent if sent else None
        raw = self.posted.get(name)
        if not isinstance(raw, str) or not raw.strip():
            return None
        return _scalar(spec.type, raw, self.zone)

    def _read_list(self, spec: FieldSpec, name: str) -> list[Any] | None:
        items = spec.items
        assert items is not None
        if items.type == "enum":
            chosen = [v for v in self.posted.getlist(name) if isinstance(v, str) and v]
            return chosen or None
        row_key = re.compile(re.escape(name) + rf"\[(\d{{1,{_MAX_ROW_INDEX_DIGITS}}})\](?:$|[.\[])")
        indexes = sorted({int(m.group(1)) for key in self.posted if (m := row_key.match(key))})
        rows = [self.read(items, f"{name}[{i}]", in_row=True) for i in indexes]
        kept = [row for row in rows if not _is_blank(row)]
        return kept or None


def _scalar(kind: str, raw: str, zone: ZoneInfo) -> Any:
    text = raw.replace("\r\n", "\n").strip()
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number):
            return text
        return int(number) if number.is_integer() and abs(number) < 2**53 and "." not in text else number
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        # datetime-local sends the wall time without a zone: it is the team's.
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).isoformat()
    return text


def _is_blank(value: Any) -> bool:
    if value is None or value is False or value == "" or value == [] or value == {}:
        return True
    if isinstance(value, Mapping):
        return all(_is_blank(v) for v in value.values())
    return False
