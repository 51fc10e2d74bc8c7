"""Attachments as the pages show them: a thumbnail that opens the full file, or the file's name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ecomflow.api.web.rendering import HOME
from ecomflow.engine.db.models import Attachment
from ecomflow.engine.files.attachments import THUMBNAIL, find_attachments

ATTACHMENTS = f"{HOME}/attachments"


@dataclass(frozen=True)
class FileView:
    """One attachment on a page."""

    id: str
    filename: str
    url: str
    thumbnail_url: str | None
    width: int | None = None
    height: int | None = None

    @property
    def size_text(self) -> str:
        """Say an image's size in pixels, or nothing for other files."""
        return f"{self.width}×{self.height}" if self.width and self.height else ""


def view_of(attachment: Attachment) -> FileView:
    """Return how a page shows the attachment (its links are the pages' own, signed in by cookie)."""
    url = f"{ATTACHMENTS}/{attachment.id}"
    thumbnail = f"{url}/{THUMBNAIL}" if attachment.has_thumbnail else None
    return FileView(attachment.id, attachment.filename, url, thumbnail, attachment.width, attachment.height)


def file_views(session: Session, ids: Iterable[str]) -> dict[str, FileView]:
    """Return the views of the attachments with these ids."""
    return {key: view_of(row) for key, row in find_attachments(session, ids).items()}
