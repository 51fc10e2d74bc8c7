"""Attachment rows: find one for a reader, record who uses it and each download, delete uploads nobody used."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import Attachment, AttachmentReference
from ecomflow.engine.db.sessions import insert_unless_exists, session_scope
from ecomflow.engine.errors import NotFound
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.files.image_rules import FileFacts
from ecomflow.engine.files.storage import BlobStore, blob_key, thumbnail_key
from ecomflow.engine.files.thumbnails import THUMBNAIL_TYPE
from ecomflow.engine.people.principals import SYSTEM_ACTOR, Principal

# A blob rewritten this recently may belong to an upload not yet committed: the sweeper leaves it.
BLOB_GRACE = timedelta(hours=1)
DELETE_BATCH = 200
THUMBNAIL = "thumbnail"


@dataclass(frozen=True)
class Download:
    """What to send for a download: the bytes' key, their type, a file name and the size when known."""

    key: str
    content_type: str
    filename: str
    size: int | None


def facts_of(attachment: Attachment) -> FileFacts:
    """Return what the field rules check of a stored attachment."""
    histogram = (attachment.image_facts or {}).get("border_histogram", ())
    return FileFacts(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        border_histogram=histogram,
    )


def get_downloadable(session: Session, attachment_id: str, *, principal: Principal) -> Attachment:
    """Return an attachment the user may download; any other does not exist for them."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or not access.may_download_attachment(session, principal, attachment):
        raise NotFound(f"attachment {attachment_id} does not exist", attachment_id=attachment_id)
    return attachment


def plan_download(attachment: Attachment, *, variant: str | None) -> Download:
    """Return what a download of the attachment (or of its thumbnail) sends."""
    if variant == THUMBNAIL:
        if not attachment.has_thumbnail:
            raise NotFound(
                f"attachment {attachment.id} is not an image and has no thumbnail", attachment_id=attachment.id
            )
        stem = attachment.filename.rsplit(".", 1)[0]
        return Download(thumbnail_key(attachment.sha256), THUMBNAIL_TYPE, f"{stem}-thumbnail.jpg", None)
    return Download(blob_key(attachment.sha256), attachment.content_type, attachment.filename, attachment.size)


def record_download(session: Session, attachment: Attachment, *, principal: Principal, variant: str | None) -> None:
    """Audit a download: who fetched which file (or its thumbnail), and when."""
    data = {"attachment_id": attachment.id, "filename": attachment.filename, "variant": variant or "original"}
    record_event(session, type="attachment.downloaded", actor=principal.name, data=data)


def reference_attachments(
    session: Session, uses: Iterable[tuple[str, str]], *, instance_id: str, task_id: str = ""
) -> int:
    """Record that the instance uses each (field path, attachment id), once each; return how many were new."""
    added = 0
    for field, attachment_id in uses:
        row = AttachmentReference(attachment_id=attachment_id, instance_id=instance_id, task_id=task_id, field=field)
        added += insert_unless_exists(session, row)
    return added


def delete_unused_uploads(*, store: BlobStore, now: datetime, retention: timedelta) -> int:
    """Delete uploads older than the retention that nothing uses, then their bytes unless other rows share them."""
    deleted = 0
    for shas in _unused_batches(now=now, retention=retention):
        deleted += len(shas)
        for sha in set(shas):
            with session_scope() as session:
                shared = session.scalar(select(Attachment.id).where(Attachment.sha256 == sha).limit(1))
            if shared is None:
                # A concurrent upload of the same bytes rewrote the blob just now: its time keeps it.
                store.delete_if_written_before(blob_key(sha), now - BLOB_GRACE)
                store.delete_if_written_before(thumbnail_key(sha), now - BLOB_GRACE)
    return deleted


def _unused_batches(*, now: datetime, retention: timedelta) -> Iterator[list[str]]:
    """Delete unused rows a batch per transaction, each with its audit event; yield each batch's SHA-256s."""
    used = exists().where(AttachmentReference.attachment_id == Attachment.id)
    while True:
        with session_scope() as session:
            rows = list(
                session.scalars(
                    select(Attachment)
                    .where(Attachment.uploaded_at < now - retention, ~used)
                    .order_by(Attachment.uploaded_at)
                    .limit(DELETE_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return
            session.execute(delete(Attachment).where(Attachment.id.in_([r.id for r in rows]), ~used))
            for row in rows:
                data = {"attachment_id": row.id, "filename": row.filename, "uploaded_by": row.uploaded_by}
                record_event(session, type="attachment.deleted", actor=SYSTEM_ACTOR, data=data, at=now)
            shas = [row.sha256 for row in rows]
        yield shas


def find_attachments(session: Session, ids: Iterable[str]) -> dict[str, Attachment]:
    """Return the attachments with these ids (unknown ids are left out)."""
    wanted = {i for i in ids if isinstance(i, str)}
    if not wanted:
        return {}
    return {row.id: row for row in session.scalars(select(Attachment).where(Attachment.id.in_(wanted)))}


def images_of_instances(session: Session, instance_ids: Iterable[str], *, each: int) -> dict[str, list[Attachment]]:
    """Return up to `each` images per instance, newest reference first (the dashboard's strip)."""
    ids = list(instance_ids)
    if not ids:
        return {}
    query = (
        select(AttachmentReference.instance_id, Attachment)
        .join(Attachment, AttachmentReference.attachment_id == Attachment.id)
        .where(AttachmentReference.instance_id.in_(ids), Attachment.has_thumbnail.is_(True))
        .order_by(AttachmentReference.id.desc())
    )
    found: dict[str, list[Attachment]] = {}
    for instance_id, attachment in session.execute(query):
        images = found.setdefault(instance_id, [])
        if len(images) < each and all(image.id != attachment.id for image in images):
            images.append(attachment)
    return found
