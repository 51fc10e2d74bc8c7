"""Attachments: upload a file (multipart, streamed) and download it or its thumbnail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.uploads import download_response, multipart_body, receive_upload
from ecomflow.engine.db.models import Attachment
from ecomflow.engine.files.attachments import THUMBNAIL

router = APIRouter(prefix="/attachments", tags=["attachments"], responses=error_responses(401))

_MULTIPART_BODY = multipart_body(
    {"file": {"type": "string", "format": "binary", "description": "the file"}}, required=["file"]
)


_FILE_BYTES = {
    200: {
        "description": "the file's bytes; Content-Type is the type read from its content",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class AttachmentOut(BaseModel):
    """An uploaded file: put its id in a form's file or image field."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    uploaded_by: str
    uploaded_at: datetime
    url: str
    thumbnail_url: str | None


def present_attachment(attachment: Attachment, *, base: str = "/attachments") -> AttachmentOut:
    """Return the attachment as the API shows it, with where to download it."""
    url = f"{base}/{attachment.id}"
    return AttachmentOut(
        id=attachment.id,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        width=attachment.width,
        height=attachment.height,
        uploaded_by=attachment.uploaded_by,
        uploaded_at=attachment.uploaded_at,
        url=url,
        thumbnail_url=f"{url}/{THUMBNAIL}" if attachment.has_thumbnail else None,
    )


@router.post(
    "",
    status_code=201,
    response_model=AttachmentOut,
    openapi_extra=_MULTIPART_BODY,
    responses=error_responses(404, 413, 422),
)
async def upload(
    request: Request,
    user: CurrentUser,
    task_id: Annotated[str | None, Query(max_length=36, description="check the file against this task's field")] = None,
    field: Annotated[str | None, Query(max_length=200, description="the file or image field, e.g. main_images")] = None,
) -> AttachmentOut:
    """Upload one file (the multipart part `file`); its type is read from its content. Name a task's field to check
    the field's rules (types, size, dimensions) at once; the size limit applies while the file streams in."""
    attachment = await receive_upload(request, principal=user, task_id=task_id, field=field)
    return present_attachment(attachment)


@router.get("/{attachment_id}", response_class=StreamingResponse, responses={**_FILE_BYTES, **error_responses(404)})
def download(attachment_id: str, user: CurrentUser) -> StreamingResponse:
    """Download a file: anyone who may see an instance using it, or its uploader while nothing uses it."""
    return download_response(attachment_id, principal=user, variant=None)


@router.get(
    "/{attachment_id}/thumbnail", response_class=StreamingResponse, responses={**_FILE_BYTES, **error_responses(404)}
)
def download_thumbnail(attachment_id: str, user: CurrentUser) -> StreamingResponse:
    """Download an image's thumbnail (JPEG, at most 320 pixels a side), under the same rule as the file."""
    return download_response(attachment_id, principal=user, variant=THUMBNAIL)
