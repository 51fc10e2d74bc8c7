"""The sweeper deletes uploads nothing used within 24 hours, with their bytes unless other uploads share them."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select, update

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Attachment, AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.attachments import reference_attachments
from ecomflow.engine.files.storage import blob_key, get_store, thumbnail_key
from ecomflow.engine.sla.sweeper import sweep_once
from tests.factories import make_attachment, make_instance
from tests.images import picture


def _age(attachment_id: str, hours: float) -> None:
    with session_scope() as session:
        at = utcnow() - timedelta(hours=hours)
        session.execute(update(Attachment).where(Attachment.id == attachment_id).values(uploaded_at=at))


def _ids() -> set[str]:
    with session_scope() as session:
        return set(session.scalars(select(Attachment.id)))


def _stored(sha256: str) -> bool:
    return (get_store().root / blob_key(sha256)).exists()


def _sha(attachment_id: str) -> str:
    with session_scope() as session:
        return session.get(Attachment, attachment_id).sha256


class TestUnusedUploads:
    def test_only_old_unused_uploads_go_and_shared_bytes_stay(self, clean_db: str) -> None:
        unused = make_attachment(uploader="wang", data=picture(810, 810), name="unused.jpg")
        used = make_attachment(uploader="wang", data=picture(820, 820), name="used.jpg")
        fresh = make_attachment(uploader="wang", data=picture(830, 830), name="fresh.jpg")
        shared_bytes = picture(840, 840)
        shared_unused = make_attachment(uploader="wang", data=shared_bytes, name="copy.jpg")
        shared_used = make_attachment(uploader="li", data=shared_bytes, name="original.jpg")
        instance_id = make_instance(process="listing_upload", params={})
        with session_scope() as session:
            uses = [("main_images[0]", used), ("main_images[1]", shared_used)]
            reference_attachments(session, uses, instance_id=instance_id, task_id="t-1")
        for attachment_id in (unused, used, shared_unused, shared_used):
            _age(attachment_id, hours=23)
        _age(fresh, hours=1)
        unused_sha, shared_sha = _sha(unused), _sha(shared_unused)

        # Two hours on, the four are 25 hours old and the blobs were written over an hour before.
        result = sweep_once(now=utcnow() + timedelta(hours=2), forecast=False, uploads=True)

        assert result.uploads_deleted == 2
        assert _ids() == {used, fresh, shared_used}
        assert not _stored(unused_sha) and not (get_store().root / thumbnail_key(unused_sha)).exists()
        assert _stored(shared_sha), "the bytes another upload uses stay"
        with session_scope() as session:
            deleted = session.scalars(select(AuditEvent).where(AuditEvent.type == "attachment.deleted"))
            assert {e.data["attachment_id"] for e in deleted} == {unused, shared_unused}

    def test_nothing_goes_without_the_uploads_sweep(self, clean_db: str) -> None:
        old = make_attachment(uploader="wang")
        _age(old, hours=48)
        assert sweep_once(forecast=False).uploads_deleted == 0
        assert _ids() == {old}

    def test_a_blob_rewritten_by_a_new_upload_of_the_same_bytes_stays(self, clean_db: str) -> None:
        rewritten = make_attachment(uploader="wang", data=picture(850, 850))
        untouched = make_attachment(uploader="wang", data=picture(860, 860))
        three_hours_ago = (utcnow() - timedelta(hours=3)).timestamp()
        for attachment_id in (rewritten, untouched):
            _age(attachment_id, hours=30)
            os.utime(get_store().root / blob_key(_sha(attachment_id)), (three_hours_ago, three_hours_ago))
        shas = {attachment_id: _sha(attachment_id) for attachment_id in (rewritten, untouched)}
        # The same bytes were just uploaded again, its row not committed yet: only the blob's time shows it.
        (get_store().root / blob_key(shas[rewritten])).touch()
        assert sweep_once(forecast=False, uploads=True).uploads_deleted == 2
        assert _stored(shas[rewritten]) and not _stored(shas[untouched])
