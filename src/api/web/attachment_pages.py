"""Uploads and downloads for the pages: the same checks as the API, signed in by the session cookie.

The task page's script posts each file here (with the CSRF token in a header) and gets JSON back;
images in pages load their thumbnails and full size from here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ecomflow.api.errors import error_body, status_of
from ecomflow.api.uploads import download_response, receive_upload
from ecomflow.api.web.csrf import token_matches
from ecomflow.api.web.deps import CsrfRefused, PageRefused, StaffPage
from ecomflow.api.web.file_views import ATTACHMENTS, view_of
from ecomflow.api.web.refusals import refusal_text
from ecomflow.engine.errors import EcomflowError, NotFound, ValidationFailed
from ecomflow.engine.files.attachments import THUMBNAIL

router = APIRouter(prefix=ATTACHMENTS.removesuffix("/attachments"), include_in_schema=False)
CSRF_HEADER = "X-CSRF-Token"


@router.post("/attachments")
async def upload(
    request: Request,
    page: StaffPage,
    task_id: Annotated[str | None, Query(max_length=36)] = None,
    field: Annotated[str | None, Query(max_length=200)] = None,
    csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> JSONResponse:
    """Take one file from the task page's script; answer its view, or the refusal in the page's language."""
    if not token_matches(csrf, page.csrf_nonce):
        raise CsrfRefused()
    try:
        attachment = await receive_upload(request, principal=page.user, task_id=task_id, field=field)
    except EcomflowError as refused:
        return _refusal(refused, page)
    shown = view_of(attachment)
    return JSONResponse(
        {
            "id": shown.id,
            "filename": shown.filename,
            "url": shown.url,
            "thumbnail_url": shown.thumbnail_url,
            "size_text": shown.size_text,
        },
        status_code=201,
    )


def _refusal(refused: EcomflowError, page: StaffPage) -> JSONResponse:
    """Answer a refused upload as the API does, plus one sentence for the person, naming the file and rule."""
    fields = None
    if isinstance(refused, ValidationFailed):
        fields = [{"field": p.field, "rule": p.rule, "message": p.message} for p in refused.problems]
    body = error_body(type(refused).__name__, refused.detail, fields)
    # The engine's sentences name the file and the rule; the page says in its own language that the upload failed.
    detail = "; ".join(f["message"] for f in fields) if fields else refusal_text(refused, page.t)
    body["message"] = page.t("file.refused", detail=detail)
    return JSONResponse(body, status_code=status_of(refused))


@router.get("/attachments/{attachment_id}")
def download(attachment_id: str, page: StaffPage) -> StreamingResponse:
    """Send a file the user may download (inline for images)."""
    return _download(attachment_id, page, variant=None)


@router.get("/attachments/{attachment_id}/thumbnail")
def thumbnail(attachment_id: str, page: StaffPage) -> StreamingResponse:
    """Send an image's thumbnail."""
    return _download(attachment_id, page, variant=THUMBNAIL)


def _download(attachment_id: str, page: StaffPage, *, variant: str | None) -> StreamingResponse:
    try:
        return download_response(attachment_id, principal=page.user, variant=variant)
    except NotFound:
        raise PageRefused(404, "refused.file_missing", page) from None
