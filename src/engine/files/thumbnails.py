"""Thumbnails of uploaded images: small JPEGs the pages show, made once per distinct image."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image

THUMBNAIL_SIZE = 320
THUMBNAIL_TYPE = "image/jpeg"


def write_thumbnail(image: Image.Image, *, spool_dir: Path) -> Path:
    """Save a thumbnail of the (RGB) image to a new temp file and return its path."""
    thumbnail = image.copy()
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    descriptor, name = tempfile.mkstemp(prefix="upload-thumb-", dir=spool_dir)
    with os.fdopen(descriptor, "wb") as file:
        thumbnail.save(file, "JPEG", quality=80)
        file.flush()
        os.fsync(file.fileno())
    return Path(name)
