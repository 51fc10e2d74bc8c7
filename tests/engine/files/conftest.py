"""A real S3-compatible server for the store's tests: moto in server mode on a free port of this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ecomflow.engine.files.storage import S3BlobStore


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str, tmp_path: Path) -> S3BlobStore:
    """A store on a fresh bucket, with a key prefix as production would have one."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    bucket = f"ecomflow-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    client.create_bucket(Bucket=bucket)
    return S3BlobStore(bucket=bucket, prefix="attachments/", client=client, spool_dir=tmp_path / "spool")
