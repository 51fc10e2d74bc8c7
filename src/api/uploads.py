"""Uploads and downloads over HTTP, shared by the JSON API and the pages: a multipart body streamed to a temp file.

The body is parsed as it arrives (python-multipart's push parser over request.stream()), so an
upload never sits whole in memory and its size limit stops it mid-stream. Only the file parts asked
for are kept (`file` for attachments; `file` and `lines_file` for imports), and short text parts
(at most FIELD_BYTES each); other parts are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import StreamingResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import Attachment
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.files.attachments import get_downloadable, plan_download, record_download
from ecomflow.engine.files.incoming import IncomingFile, ReceivedFile, SizeLimit
from ecomflow.engine.files.storage import get_store
from ecomflow.engine.files.uploads import UploadTarget, accept_upload, find_upload_target
from ecomflow.engine.people.principals import Principal

FILE_PART = "file"
# The routes that take uploads: their bodies stream to disk under their own, larger limit.
UPLOAD_PATHS = frozenset({"/attachments", "/ui/attachments", "/imports"})
# A wave's tracking-number file (POST /waves/{id}/shipments) is an upload too.
_UPLOAD_PATTERN = re.compile(r"/waves/[0-9]+/shipments")
# An import sends up to two files (订单报表 + 宝贝报表): its body may hold two uploads.
TWO_FILE_PATHS = frozenset({"/imports"})
# A text part (kind, platform) is a word: anything longer is cut here.
FIELD_BYTES = 256
MAX_FIELDS = 16
# What a multipart body may add around its file: boundaries and part headers.
MULTIPART_OVERHEAD = 64 * 1024


def is_upload_path(path: str) -> bool:
    """Tell whether a request path takes an upload (its body streams to disk, may hold NUL bytes)."""
    return path in UPLOAD_PATHS or _UPLOAD_PATTERN.fullmatch(path) is not None


def upload_body_limit(path: str = "") -> int:
    """Return the most bytes an upload's whole body may have."""
    files = 2 if path in TWO_FILE_PATHS else 1
    return files * get_settings().max_upload_bytes + MULTIPART_OVERHEAD


def _refused(field: str, rule: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, problems=[FieldProblem(field, rule, message)])


async def receive_upload(
    request: Request, *, principal: Principal, task_id: str | None, field: str | None
) -> Attachment:
    """Stream the request's file part to a temp file, check it (against the task's field when named), store it."""
    target = None
    if task_id or field:
        if not (task_id and field):
            raise _refused("field" if task_id else "task_id", "required", "task_id and field go together")
        target = await run_in_threadpool(_find_target, principal, task_id, field)
    settings = get_settings()
    store = get_store()
    limit = target.limit(settings.max_upload_bytes) if target else SizeLimit(settings.max_upload_bytes)

    def open_file(name: str) -> IncomingFile:
        return IncomingFile(spool_dir=store.spool_dir, filename=name, limit=limit)

    received = await _stream_file_part(request, open_file)
    return await run_in_threadpool(
        accept_upload,
        received,
        principal=principal,
        store=store,
        max_image_pixels=settings.max_image_pixels,
        target=target,
    )


def _find_target(principal: Principal, task_id: str, field: str) -> UploadTarget:
    with read_scope() as session:
        return find_upload_target(session, task_id=task_id, field=field, principal=principal)


async def _stream_file_part(request: Request, open_file: Callable[[str], IncomingFile]) -> ReceivedFile:
    """Feed the body to a multipart parser as it arrives; write the `file` part's bytes to the file opened for it."""
    files, _ = await stream_parts(request, open_file, file_parts=(FILE_PART,))
    if FILE_PART not in files:
        raise _refused(FILE_PART, "required", "send the file in a multipart part named file, with a file name")
    return files[FILE_PART]


async def stream_parts(
    request: Request, open_file: Callable[[str], IncomingFile], *, file_parts: tuple[str, ...]
) -> tuple[dict[str, ReceivedFile], dict[str, str]]:
    """Stream a multipart body: the named file parts to temp files, the short text parts into a dict."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise _refused("body", "multipart", "send the file as multipart/form-data in a part named file")
    state = _Parts(open_file, file_parts)
    parser = MultipartParser(boundary, state.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        state.discard()
        raise _refused("body", "multipart", f"the multipart body is malformed ({exc})") from None
    except BaseException:
        # A refused, broken or abandoned (ClientDisconnect, cancelled) upload leaves no temp file and no attachment.
        state.discard()
        raise
    return {name: file.finish() for name, file in state.files.items()}, state.text_fields()


class _Parts:
    """The multipart parser's callbacks: read each part's headers, pass the file part's bytes on."""

    def __init__(self, open_file: Callable[[str], IncomingFile], file_parts: tuple[str, ...]) -> None:
        self.open_file = open_file
        self.file_parts = file_parts
        self.files: dict[str, IncomingFile] = {}
        self.fields: dict[str, bytes] = {}
        self._writing: IncomingFile | None = None
        self._field: str | None = None
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._header_name, self._writing, self._field = {}, b"", None, None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name = data[start:end].lower()

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[self._header_name] = self._headers.get(self._header_name, b"") + data[start:end]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if name in self.file_parts and filename is not None and name not in self.files:
            self._writing = self.files[name] = self.open_file(filename.decode("utf-8", "replace"))
        elif filename is None and name and name not in self.fields and len(self.fields) < MAX_FIELDS:
            self._field = name
            self.fields[name] = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._writing is not None:
            self._writing.write(data[start:end])
        elif self._field is not None:
            self.fields[self._field] = (self.fields[self._field] + data[start:end])[:FIELD_BYTES]

    def _end(self) -> None:
        self._writing, self._field = None, None

    def text_fields(self) -> dict[str, str]:
        return {name: value.decode("utf-8", "replace").strip() for name, value in self.fields.items()}

    def discard(self) -> None:
        for file in self.files.values():
            file.discard()


def download_response(attachment_id: str, *, principal: Principal, variant: str | None) -> StreamingResponse:
    """Check the user may download the file, audit the download, and stream the bytes (or the thumbnail)."""
    with read_scope() as session:
        attachment = get_downloadable(session, attachment_id, principal=principal)
        plan = plan_download(attachment, variant=variant)
    chunks = get_store().read(plan.key)
    with session_scope() as session:
        record_download(session, attachment, principal=principal, variant=variant)
    disposition = "inline" if plan.content_type.startswith("image/") else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(plan.filename)}",
        "X-Content-Type-Options": "nosniff",
        # A file is never a page: no script in it runs, even if a browser were to render it.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=300",
    }
    if plan.size is not None:
        headers["Content-Length"] = str(plan.size)
    return StreamingResponse(chunks, media_type=plan.content_type, headers=headers)


def multipart_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """Return the OpenAPI requestBody (for openapi_extra) of a route that streams its multipart parts itself."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
