"""Where attachment bytes live: a content-addressed directory (the default) or an S3-compatible bucket.

Both stores take a finished temp file and make it visible under its final key in one atomic step
(a rename; an S3 PUT or completed multipart upload), so a crash leaves either nothing or the whole file.
Keys are content addresses (`blobs/ab/<sha256>`): the same bytes are stored once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ecomflow.engine.config import Settings, get_settings
from ecomflow.engine.errors import BlobMissing

CHUNK_BYTES = 64 * 1024


class BlobStore(Protocol):
    """One interface for every store: put a finished temp file under a key, read it back, delete it."""

    spool_dir: Path

    def put(self, key: str, source: Path) -> None:
        """Make the temp file at source visible under key at once (it is consumed)."""

    def read(self, key: str) -> Iterator[bytes]:
        """Yield the blob's bytes in chunks, or raise BlobMissing."""

    def delete_if_written_before(self, key: str, moment: datetime) -> bool:
        """Delete the blob unless it was (re)written at or after moment; tell whether it was deleted."""


def blob_key(sha256: str) -> str:
    """Return the key of an attachment's bytes."""
    return f"blobs/{sha256[:2]}/{sha256}"


def thumbnail_key(sha256: str) -> str:
    """Return the key of the thumbnail of an attachment's bytes."""
    return f"thumbnails/{sha256[:2]}/{sha256}.jpg"


class LocalBlobStore:
    """A directory of content-addressed files; temp files are spooled inside it, so a rename is atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spool_dir = root / "tmp"
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, source: Path) -> None:
        """Rename the temp file into place; putting equal bytes again refreshes the time the sweeper reads."""
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def read(self, key: str) -> Iterator[bytes]:
        """Yield the file's bytes in chunks."""
        try:
            file = (self.root / key).open("rb")
        except FileNotFoundError:
            raise BlobMissing(f"no stored file {key}", key=key) from None
        return _chunks_of(file)

    def delete_if_written_before(self, key: str, moment: datetime) -> bool:
        """Delete the file unless it was written at or after moment."""
        path = self.root / key
        try:
            if path.stat().st_mtime >= moment.timestamp():
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _chunks_of(file: Any) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk


class S3BlobStore:
    """A bucket (and key prefix) of an S3-compatible store; uploads are spooled on local disk first."""

    def __init__(self, *, bucket: str, prefix: str, client: Any, spool_dir: Path) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix, client
        self.spool_dir = spool_dir
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, source: Path) -> None:
        """Upload the temp file (multipart when large: the object appears only when complete), then remove it."""
        try:
            self.client.upload_file(str(source), self.bucket, self.prefix + key)
        finally:
            source.unlink(missing_ok=True)

    def read(self, key: str) -> Iterator[bytes]:
        """Stream the object's bytes in chunks."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise BlobMissing(f"no stored object {key}", key=key) from None
        return _body_chunks(body)

    def delete_if_written_before(self, key: str, moment: datetime) -> bool:
        """Delete the object unless it was written at or after moment."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.ClientError:
            return False
        if head["LastModified"] >= moment:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        return True


def _body_chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def make_store(settings: Settings) -> BlobStore:
    """Return the store ECOMFLOW_STORAGE_URL names: s3://bucket/prefix, else the data dir's attachments folder."""
    url = settings.storage_url
    if not url:
        return LocalBlobStore(settings.data_dir.resolve() / "attachments")
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalBlobStore(Path(parts.path))
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"ECOMFLOW_STORAGE_URL must be s3://bucket[/prefix] or file:///path, got {url!r}")
    prefix = parts.path.strip("/")
    return S3BlobStore(
        bucket=parts.netloc,
        prefix=f"{prefix}/" if prefix else "",
        client=_s3_client(settings),
        spool_dir=settings.data_dir.resolve() / "upload-spool",
    )


def _s3_client(settings: Settings) -> Any:
    import boto3  # noqa: PLC0415 - only an S3 deployment needs boto3 loaded

    secret = settings.s3_secret_access_key
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
    )


@lru_cache(maxsize=1)
def get_store() -> BlobStore:
    """Return the process-wide store, made once from the settings."""
    return make_store(get_settings())


def remove_stale_spool_files(store: BlobStore, *, older_than_seconds: float) -> int:
    """Delete temp files an upload left behind when its process died mid-stream; return how many."""
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in store.spool_dir.glob("upload-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
