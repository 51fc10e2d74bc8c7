"""Show what earlier steps left a task (its context) and what a step produced, as definition lists and tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecomflow.api.web.file_views import ATTACHMENTS, FileView
from ecomflow.api.web.i18n import Translator
from ecomflow.engine.definitions.file_fields import FILE_KINDS
from ecomflow.engine.definitions.forms import FieldSpec, Label
from ecomflow.engine.definitions.processes import ProcessSpec
from ecomflow.engine.shop.listing_exports import BULK_UPLOAD_FILES

MAX_DEPTH = 6
MAX_TABLE_COLUMNS = 12


@dataclass
class Shown:
    """A value ready to render: text, label/value pairs, a table of rows, a list, or files (thumbnails)."""

    kind: str
    text: str = ""
    pairs: list[tuple[str, Shown]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Shown]] = field(default_factory=list)
    items: list[Shown] = field(default_factory=list)
    files: list[FileView] = field(default_factory=list)


@dataclass(frozen=True)
class FieldNames:
    """What the process's forms call their fields (and its steps), and the choices of each choice field."""

    labels: Mapping[str, Label]
    choices: Mapping[str, frozenset[str]]
    # Fields that hold attachment ids: shown as thumbnails that open the file.
    files: frozenset[str] = frozenset()


def field_names(process: ProcessSpec | None) -> FieldNames:
    """Collect every field of the process's forms (nested too), then its steps: a context may hold a step's output."""
    labels: dict[str, Label] = {}
    choices: dict[str, set[str]] = {}
    files: set[str] = set()

    def collect(fields: tuple[FieldSpec, ...]) -> None:
        for spec in fields:
            labels.setdefault(spec.name, spec.label)
            chosen = spec.items if spec.type == "list" and spec.items is not None else spec
            if chosen.type == "enum":
                choices.setdefault(spec.name, set()).update(chosen.attrs["values"])
            if chosen.type in FILE_KINDS:
                files.add(spec.name)
            collect(spec.fields)
            if spec.items is not None:
                collect(spec.items.fields)

    if process is not None:
        collect(process.start_form.fields)
        for step in process.steps:
            if step.form is not None:
                collect(step.form.fields)
        for step in process.steps:
            labels.setdefault(step.key, step.label)
    choices_of = {name: frozenset(values) for name, values in choices.items()}
    # Files a step wrote itself (a listing's bulk-upload files) are offered for download like uploaded ones.
    return FieldNames(labels=labels, choices=choices_of, files=frozenset(files | {BULK_UPLOAD_FILES}))


def file_ids_in(value: Any, names: FieldNames, key: str = "") -> set[str]:
    """Return the attachment ids a context or output holds under the process's file fields."""
    if key in names.files:
        values = value if isinstance(value, list) else [value]
        return {v for v in values if isinstance(v, str)}
    if isinstance(value, Mapping):
        return set().union(*(file_ids_in(v, names, str(k)) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(file_ids_in(v, names, key) for v in value))
    return set()


@dataclass(frozen=True)
class ContextRenderer:
    """Turns JSON values into Shown trees, naming keys with the catalogue or the process's field labels."""

    t: Translator
    names: FieldNames
    files: Mapping[str, FileView] = field(default_factory=dict)

    def key_label(self, key: str) -> str:
        """Name a key: the form's label, else a UI word for the engine's own keys, else the key itself."""
        if key in self.names.labels:
            return self.t.label(self.names.labels[key])
        return self.t.get(f"ctx.{key}", key.replace("_", " "))

    def show(self, value: Any, depth: int = 0, *, key: str = "") -> Shown:
        """Return the value (found under key, if any) as a Shown tree."""
        if depth >= MAX_DEPTH:
            return Shown("text", text=json.dumps(value, ensure_ascii=False, default=str))
        if key in self.names.files and value:
            shown = self._files(value)
            if shown is not None:
                return shown
        if isinstance(value, Mapping) and not value:
            return Shown("text", text="—")
        if isinstance(value, Mapping):
            return Shown(
                "pairs", pairs=[(self.key_label(str(k)), self.show(v, depth + 1, key=str(k))) for k, v in value.items()]
            )
        if isinstance(value, list):
            return self._show_list(value, depth, key=key)
        return Shown("text", text=self._text(value, key=key))

    def _files(self, value: Any) -> Shown | None:
        """Show attachment ids as their thumbnails (or names); None when the value holds something else."""
        ids = value if isinstance(value, list) else [value]
        if not all(isinstance(i, str) for i in ids):
            return None
        return Shown("files", files=[self.files.get(i) or FileView(i, i, f"{ATTACHMENTS}/{i}", None) for i in ids])

    def _show_list(self, values: list[Any], depth: int, *, key: str) -> Shown:
        if not values:
            return Shown("text", text="—")
        if all(isinstance(v, Mapping) for v in values):
            keys = list(dict.fromkeys(str(k) for v in values for k in v))
            if len(keys) <= MAX_TABLE_COLUMNS:
                rows = [
                    [self.show(row[k], depth + 1, key=k) if k in row else Shown("text") for k in keys] for row in values
                ]
                return Shown("table", columns=[self.key_label(k) for k in keys], rows=rows)
        if all(not isinstance(v, (Mapping, list)) for v in values):
            return Shown("text", text=self.t("value.separator").join(self._text(v, key=key) for v in values))
        return Shown("items", items=[self.show(v, depth + 1) for v in values])

    def _text(self, value: Any, *, key: str) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool):
            return self.t("value.yes") if value else self.t("value.no")
        if isinstance(value, str) and value in self.names.choices.get(key, ()):
            # A choice the form offered is shown by its name, as the form showed it.
            return self.t.get(f"enum.{value}", value)
        return str(value)
