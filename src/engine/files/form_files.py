"""The files a form's data names: find them, check each against its field, and record that an instance uses them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import Attachment
from ecomflow.engine.definitions.file_fields import FILE_KINDS
from ecomflow.engine.definitions.forms import FieldProblem, FieldSpec, FormSpec
from ecomflow.engine.files.attachments import facts_of, reference_attachments
from ecomflow.engine.files.image_rules import check_file
from ecomflow.engine.people.principals import Principal


@dataclass(frozen=True)
class FileUse:
    """One attachment id in form data: where it is, its field, its place in the field, the row around it."""

    path: str
    attachment_id: str
    spec: FieldSpec
    position: int
    row: Mapping[str, Any]


def find_file_uses(form: FormSpec, data: Any) -> list[FileUse]:
    """Return every attachment id in data (already valid against the form's schema), in form order."""
    uses: list[FileUse] = []
    if isinstance(data, Mapping):
        _walk(form.fields, data, "", uses)
    return uses


def _walk(fields: Sequence[FieldSpec], row: Mapping[str, Any], prefix: str, uses: list[FileUse]) -> None:
    for spec in fields:
        if spec.name in row:
            _visit(spec, row[spec.name], f"{prefix}{spec.name}", row, uses, position=0)


def _visit(
    spec: FieldSpec, value: Any, path: str, row: Mapping[str, Any], uses: list[FileUse], *, position: int
) -> None:
    if spec.type in FILE_KINDS:
        if isinstance(value, list):
            uses.extend(FileUse(f"{path}[{i}]", str(v), spec, i, row) for i, v in enumerate(value))
        else:
            uses.append(FileUse(path, str(value), spec, position, row))
    elif spec.type == "object" and isinstance(value, Mapping):
        _walk(spec.fields, value, f"{path}.", uses)
    elif spec.type == "list" and spec.items is not None and isinstance(value, list):
        for index, item in enumerate(value):
            _visit(spec.items, item, f"{path}[{index}]", row, uses, position=index)


def check_file_uses(session: Session, uses: Sequence[FileUse], *, principal: Principal) -> list[FieldProblem]:
    """Return a problem per unknown or unusable file and per field rule a file breaks."""
    if not uses:
        return []
    ids = {use.attachment_id for use in uses}
    found = {row.id: row for row in session.scalars(select(Attachment).where(Attachment.id.in_(ids)))}
    problems = []
    for use in uses:
        attachment = found.get(use.attachment_id)
        if attachment is None or not access.may_put_attachment_in_form(session, principal, attachment):
            message = f"{use.path}: no attachment {use.attachment_id} that {principal.name} uploaded or may see"
            problems.append(FieldProblem(use.path, "attachment", message))
            continue
        size_by = use.spec.attrs.get("size_by")
        placement = use.row.get(size_by["field"]) if size_by else None
        problems += check_file(
            facts_of(attachment),
            use.spec.attrs,
            kind=use.spec.type,
            path=use.path,
            first=use.position == 0,
            placement=placement if isinstance(placement, str) else None,
        )
    return problems


def reference_file_uses(session: Session, uses: Sequence[FileUse], *, instance_id: str, task_id: str = "") -> None:
    """Record that the instance uses these files (through the task's output, or its start params)."""
    reference_attachments(
        session, ((use.path, use.attachment_id) for use in uses), instance_id=instance_id, task_id=task_id
    )
