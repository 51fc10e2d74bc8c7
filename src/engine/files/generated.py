"""Files ecomflow writes itself (a platform's bulk-upload file): stored as attachments the instance references.

The reference makes the existing download rule apply (whoever may see the instance may download the file) and
keeps the sweeper off it. A field under GENERATED is written once per instance: a retried step gets the same file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import Attachment, AttachmentReference
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.files.attachments import reference_attachments
from ecomflow.engine.files.storage import BlobStore, blob_key, get_store

GENERATED = "generated."


def store_generated(
    session: Session,
    *,
    data: bytes,
    filename: str,
    content_type: str,
    instance_id: str,
    name: str,
    actor: str,
    store: BlobStore | None = None,
) -> Attachment:
    """Store the bytes as the instance's generated file `name` and return it; the one already stored, if any."""
    field = GENERATED + name
    existing = session.scalar(
        select(Attachment)
        .join(AttachmentReference, AttachmentReference.attachment_id == Attachment.id)
        .where(AttachmentReference.instance_id == instance_id, AttachmentReference.field == field)
    )
    if existing is not None:
        return existing
    store = store or get_store()
    sha256 = hashlib.sha256(data).hexdigest()
    store.put(blob_key(sha256), _spooled(data, store.spool_dir))
    row = Attachment(sha256=sha256, size=len(data), content_type=content_type, filename=filename, uploaded_by=actor)
    session.add(row)
    session.flush()
    reference_attachments(session, [(field, row.id)], instance_id=instance_id)
    record_event(
        session,
        type="attachment.generated",
        actor=actor,
        instance_id=instance_id,
        data={"attachment_id": row.id, "filename": filename, "content_type": content_type, "size": len(data)},
    )
    return row


def generated_files(session: Session, instance_id: str) -> list[tuple[str, Attachment]]:
    """Return (name, attachment) of every file generated for the instance, in the order they were written."""
    rows = session.execute(
        select(AttachmentReference.field, Attachment)
        .join(Attachment, Attachment.id == AttachmentReference.attachment_id)
        .where(AttachmentReference.instance_id == instance_id, AttachmentReference.field.startswith(GENERATED))
        .order_by(AttachmentReference.id)
    )
    return [(field.removeprefix(GENERATED), attachment) for field, attachment in rows]


def _spooled(data: bytes, spool_dir: Path) -> Path:
    """Write the bytes to a temp file in the store's spool directory (the store consumes it)."""
    descriptor, name = tempfile.mkstemp(prefix="generated-", dir=spool_dir)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return Path(name)
