"""The blob stores: a content-addressed directory and an S3-compatible bucket behind one interface."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecomflow.engine.config import Settings
from ecomflow.engine.db.models import Attachment
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import BlobMissing, ValidationFailed
from ecomflow.engine.files.incoming import IncomingFile, SizeLimit
from ecomflow.engine.files.storage import BlobStore, LocalBlobStore, S3BlobStore, blob_key, make_store, thumbnail_key
from ecomflow.engine.files.uploads import accept_upload
from ecomflow.engine.people.principals import Principal
from tests.images import picture, truncated

WANG = Principal(name="wang", roles=frozenset({"visual"}))


def temp_file(store: BlobStore, data: bytes) -> Path:
    path = store.spool_dir / "upload-test"
    path.write_bytes(data)
    return path


def receive(store: BlobStore, data: bytes, name: str = "shot.jpg"):
    incoming = IncomingFile(spool_dir=store.spool_dir, filename=name, limit=SizeLimit(10_000_000))
    incoming.write(data)
    return incoming.finish()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "attachments")
    return request.getfixturevalue("s3_store")


class TestEveryStore:
    def test_a_put_file_reads_back_and_its_temp_file_is_consumed(self, store: BlobStore) -> None:
        data = os.urandom(200_000)
        source = temp_file(store, data)
        store.put("blobs/ab/abc", source)
        assert b"".join(store.read("blobs/ab/abc")) == data
        assert not source.exists()

    def test_a_missing_key_is_blob_missing(self, store: BlobStore) -> None:
        with pytest.raises(BlobMissing):
            b"".join(store.read("blobs/00/nothing"))

    def test_delete_spares_a_blob_written_after_the_moment(self, store: BlobStore) -> None:
        store.put("blobs/cd/cdef", temp_file(store, b"x"))
        assert store.delete_if_written_before("blobs/cd/cdef", datetime.now(UTC) - timedelta(hours=1)) is False
        assert b"".join(store.read("blobs/cd/cdef")) == b"x"
        assert store.delete_if_written_before("blobs/cd/cdef", datetime.now(UTC) + timedelta(minutes=1)) is True
        with pytest.raises(BlobMissing):
            b"".join(store.read("blobs/cd/cdef"))

    def test_an_upload_stores_its_bytes_and_thumbnail_under_their_content_address(
        self, store: BlobStore, clean_db: str
    ) -> None:
        data = picture(1000, 1000)
        attachment = accept_upload(receive(store, data), principal=WANG, store=store, max_image_pixels=10**8)
        assert b"".join(store.read(blob_key(attachment.sha256))) == data
        assert b"".join(store.read(thumbnail_key(attachment.sha256))).startswith(b"\xff\xd8")
        assert list(store.spool_dir.iterdir()) == []

    def test_a_refused_upload_leaves_no_row_no_blob_and_no_temp_file(self, store: BlobStore, clean_db: str) -> None:
        received = receive(store, truncated(picture(1000, 1000)), "cut.jpg")
        with pytest.raises(ValidationFailed):
            accept_upload(received, principal=WANG, store=store, max_image_pixels=10**8)
        with pytest.raises(BlobMissing):
            b"".join(store.read(blob_key(received.sha256)))
        assert list(store.spool_dir.iterdir()) == []
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(Attachment)) == 0


class TestCrashes:
    def test_a_store_failing_before_the_commit_leaves_no_row(self, tmp_path: Path, clean_db: str) -> None:
        class DiesMidPut(LocalBlobStore):
            def put(self, key: str, source: Path) -> None:
                if key.startswith("blobs/"):
                    raise OSError("the process died here")
                super().put(key, source)

        store = DiesMidPut(tmp_path / "attachments")
        received = receive(store, picture())
        with pytest.raises(OSError, match="died"):
            accept_upload(received, principal=WANG, store=store, max_image_pixels=10**8)
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(Attachment)) == 0
        assert not (store.root / blob_key(received.sha256)).exists()
        assert list(store.spool_dir.iterdir()) == []

    def test_an_abandoned_incoming_file_is_removed(self, tmp_path: Path) -> None:
        store = LocalBlobStore(tmp_path / "attachments")
        incoming = IncomingFile(spool_dir=store.spool_dir, filename="half.jpg", limit=SizeLimit(100))
        incoming.write(b"\xff\xd8\xff" + b"0" * 50)
        incoming.discard()
        assert list(store.spool_dir.iterdir()) == []


class TestChoosingTheStore:
    def test_the_default_is_a_directory_in_the_data_dir(self, tmp_path: Path) -> None:
        store = make_store(Settings(data_dir=tmp_path))
        assert isinstance(store, LocalBlobStore) and store.root == tmp_path.resolve() / "attachments"

    def test_an_s3_url_selects_the_bucket_and_prefix(self, tmp_path: Path, s3_endpoint: str) -> None:
        settings = Settings(
            data_dir=tmp_path,
            storage_url="s3://shop-files/ecomflow/prod",
            s3_endpoint_url=s3_endpoint,
            s3_region="us-east-1",
            s3_access_key_id="test",
            s3_secret_access_key="test",
        )
        store = make_store(settings)
        assert isinstance(store, S3BlobStore) and (store.bucket, store.prefix) == ("shop-files", "ecomflow/prod/")

    def test_another_scheme_is_refused_naming_the_setting(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="ECOMFLOW_STORAGE_URL"):
            make_store(Settings(data_dir=tmp_path, storage_url="ftp://files"))
