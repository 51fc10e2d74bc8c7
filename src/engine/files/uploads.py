"""Turn a received upload into an attachment: check its content, store its bytes, then commit its row.

The order is the guarantee: the bytes (and thumbnail) are in the store under their final key
before the row is committed, with its audit event, in one transaction. A crash before the commit
leaves at most an unused blob (or a temp file), which the sweeper removes; never a row without bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import Attachment
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.forms import FieldProblem, FieldSpec
from ecomflow.engine.definitions.versions import step_of_task
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.files import content_types
from ecomflow.engine.files.image_inspection import InspectedImage, inspect_image
from ecomflow.engine.files.image_rules import FileFacts, check_file
from ecomflow.engine.files.incoming import ReceivedFile, SizeLimit
from ecomflow.engine.files.storage import BlobStore, blob_key, thumbnail_key
from ecomflow.engine.files.thumbnails import write_thumbnail
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import get_visible_task


@lru_cache(maxsize=1)
def _decoding() -> threading.BoundedSemaphore:
    """Return the process's limit on images decoded at once, made when the first upload comes."""
    return threading.BoundedSemaphore(get_settings().image_decode_concurrency)


@dataclass(frozen=True)
class UploadTarget:
    """The form field an upload is for: its rules are checked at once, and its size limit while it streams."""

    path: str
    kind: str
    attrs: Mapping[str, Any]

    def limit(self, server_max: int) -> SizeLimit:
        """Return the size limit while streaming: the field's when it sets a smaller one."""
        field_max = self.attrs.get("max_size")
        if field_max is not None and field_max < server_max:
            return SizeLimit(field_max, field_rule=True)
        return SizeLimit(server_max)


def find_upload_target(session: Session, *, task_id: str, field: str, principal: Principal) -> UploadTarget:
    """Return the file field of a task the user may see; `field` may carry row indexes (banners[0].image)."""
    task = get_visible_task(session, task_id, principal=principal)
    # The form of the version the task's instance is pinned to, as completing it will check.
    form = step_of_task(session, task).form
    spec = _field_at(form.fields if form is not None else (), field)
    if spec is None or spec.type not in ("file", "image"):
        message = f"field: step {task.step_key} has no file or image field {field!r}"
        raise ValidationFailed(message, problems=[FieldProblem("field", "file_field", message)])
    return UploadTarget(path=field, kind=spec.type, attrs=spec.attrs)


def _field_at(fields: tuple[FieldSpec, ...], path: str) -> FieldSpec | None:
    found: FieldSpec | None = None
    for part in path.replace("]", "").split("."):
        name = part.split("[", 1)[0]
        found = next((spec for spec in fields if spec.name == name), None)
        if found is None:
            return None
        inner = found.items if found.type == "list" and found.items is not None else found
        fields = inner.fields
        found = inner if inner.type in ("file", "image") else found
    return found


def accept_upload(
    received: ReceivedFile,
    *,
    principal: Principal,
    store: BlobStore,
    max_image_pixels: int,
    target: UploadTarget | None = None,
) -> Attachment:
    """Check the received file, store it and its thumbnail, and commit its row with the audit event."""
    temp_paths = [received.path]
    try:
        kind = content_types.sniff(received.head)
        if kind is None:
            known = ", ".join(k.name for k in content_types.KNOWN)
            message = f"{received.filename} is not a file type ecomflow takes (by its content: {known})"
            raise ValidationFailed(message, problems=[FieldProblem("file", "content_type", message)])
        image, thumbnail = None, None
        if kind.image:
            # Decoded images hold megabytes each: a few at a time keep the memory of many uploads flat.
            with _decoding():
                image = inspect_image(received.path, filename=received.filename, max_pixels=max_image_pixels)
                if target is not None:
                    _check_for_target(received, kind.media_type, image, target)
                thumbnail = write_thumbnail(image.working_copy, spool_dir=store.spool_dir)
        elif target is not None:
            _check_for_target(received, kind.media_type, None, target)
        if thumbnail is not None:
            temp_paths.append(thumbnail)
            store.put(thumbnail_key(received.sha256), thumbnail)
        store.put(blob_key(received.sha256), received.path)
        with session_scope() as session:
            return _commit_row(session, received, kind.media_type, image, principal=principal)
    finally:
        for path in temp_paths:
            path.unlink(missing_ok=True)


def _check_for_target(
    received: ReceivedFile, media_type: str, image: InspectedImage | None, target: UploadTarget
) -> None:
    """Refuse the file now if it breaks its field's rules (those that need no other field, first-file rules too)."""
    facts = FileFacts(
        filename=received.filename,
        content_type=media_type,
        size=received.size,
        width=image.width if image else None,
        height=image.height if image else None,
        border_histogram=image.border_histogram if image else (),
    )
    # Whether this will be the first file is unknown yet: white-background is checked when the form is completed.
    attrs = {key: value for key, value in target.attrs.items() if key != "white_background"}
    problems = [
        FieldProblem("file", p.rule, p.message)
        for p in check_file(facts, attrs, kind=target.kind, path=target.path, first=False)
    ]
    if problems:
        raise ValidationFailed(f"{received.filename} breaks the rules of {target.path}", problems=problems)


def _commit_row(
    session: Session, received: ReceivedFile, media_type: str, image: InspectedImage | None, *, principal: Principal
) -> Attachment:
    row = Attachment(
        sha256=received.sha256,
        size=received.size,
        content_type=media_type,
        filename=received.filename,
        width=image.width if image else None,
        height=image.height if image else None,
        image_facts=image.facts if image else None,
        has_thumbnail=image is not None,
        uploaded_by=principal.name,
    )
    session.add(row)
    session.flush()
    data = {"attachment_id": row.id, "filename": row.filename, "content_type": media_type, "size": row.size}
    record_event(session, type="attachment.uploaded", actor=principal.name, data=data, at=row.uploaded_at)
    return row
