"""Receive an upload's bytes as they stream in: to a temp file, hashed and counted, refused the moment it is too big."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import PayloadTooLarge, ValidationFailed
from ecomflow.engine.files.content_types import HEAD_BYTES

MAX_FILENAME_CHARS = 255


@dataclass(frozen=True)
class ReceivedFile:
    """A complete upload in a temp file: its name as sent, size, SHA-256 and first bytes."""

    path: Path
    filename: str
    size: int
    sha256: str
    head: bytes


@dataclass(frozen=True)
class SizeLimit:
    """The most bytes an upload may have; `field_rule` when a form field sets it (a 422), else the server's (a 413)."""

    max_bytes: int
    field_rule: bool = False


class IncomingFile:
    """A temp file that takes an upload chunk by chunk; `finish` hands it over, `discard` removes it."""

    def __init__(self, *, spool_dir: Path, filename: str, limit: SizeLimit) -> None:
        self.filename = clean_filename(filename)
        self.limit = limit
        self._hash = hashlib.sha256()
        self._head = b""
        self.size = 0
        descriptor, name = tempfile.mkstemp(prefix="upload-", dir=spool_dir)
        self.path = Path(name)
        self._file = os.fdopen(descriptor, "wb")

    def write(self, chunk: bytes) -> None:
        """Append a chunk; refuse the upload as soon as it outgrows its limit."""
        self.size += len(chunk)
        if self.size > self.limit.max_bytes:
            self.discard()
            raise too_large(self.filename, self.limit)
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> ReceivedFile:
        """Flush the file to disk (a rename of it must never expose half its bytes) and describe it."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return ReceivedFile(
            path=self.path, filename=self.filename, size=self.size, sha256=self._hash.hexdigest(), head=self._head
        )

    def discard(self) -> None:
        """Drop the temp file: the upload failed or was refused."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def too_large(filename: str, limit: SizeLimit) -> PayloadTooLarge | ValidationFailed:
    """Return the refusal of a file over its limit: a field's rule names the file (422), the server's cap is a 413."""
    if limit.field_rule:
        message = f"{filename} is larger than {describe_size(limit.max_bytes)}, the most this field takes"
        return ValidationFailed(message, problems=[FieldProblem("file", "max_size", message)])
    return PayloadTooLarge(f"{filename} is larger than {describe_size(limit.max_bytes)}, the most an upload may be")


def describe_size(size: int) -> str:
    """Say a byte count for people: 3 MB, 512 KB, 900 bytes (1 MB = 1024 KB)."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def clean_filename(name: str) -> str:
    """Keep the last path part of a name as sent, without control characters, at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(char for char in base if char.isprintable()).strip()
    return printable[:MAX_FILENAME_CHARS] or "upload"
