"""Imports of the shops' exports over HTTP: upload (multipart, streamed to temp files), then read the report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.uploads import FILE_PART, multipart_body, stream_parts
from ecomflow.engine.access import check_may_import_platform_data
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.files.incoming import IncomingFile, SizeLimit
from ecomflow.engine.files.storage import get_store
from ecomflow.engine.intake import importer
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.engine.intake.records import AD_SOURCES, KINDS, PLATFORMS
from ecomflow.engine.people.principals import Principal

router = APIRouter(prefix="/imports", tags=["imports"], responses=error_responses(401, 403, 422))
LINES_PART = "lines_file"

_MULTIPART_BODY = multipart_body(
    {
        "kind": {"type": "string", "enum": list(KINDS)},
        "platform": {"type": "string", "enum": list(PLATFORMS)},
        "source": {
            "type": "string",
            "enum": list(AD_SOURCES),
            "description": "ads only: ztc (直通车) or zz (钻展); the report does not say which",
        },
        "file": {
            "type": "string",
            "format": "binary",
            "description": "the export: CSV (GBK/GB18030, UTF-8 with BOM) or XLSX",
        },
        LINES_PART: {
            "type": "string",
            "format": "binary",
            "description": "Tmall orders: the 宝贝报表 (order lines) exported with the 订单报表",
        },
    },
    required=["kind", "platform", "file"],
)


class Rejection(BaseModel):
    """A row left out: the file, its line, and why (the column and the rule)."""

    file: str | None = None
    line: int
    reason: str


class ImportReport(BaseModel):
    """What an import did; `queued` is how many process starts still wait for the orchestrator, read now."""

    id: str
    kind: str
    platform: str
    source: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejections: list[Rejection]
    queued: int


@router.post(
    "",
    status_code=201,
    response_model=ImportReport,
    openapi_extra=_MULTIPART_BODY,
    responses=error_responses(413, 422),
)
async def upload_import(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Import an export (customer service and managers): every row is checked before anything is written; a
    refused file (wrong columns, truncated, wrong encoding) is a 422 naming what is wrong, with nothing written."""
    check_may_import_platform_data(user)
    store = get_store()
    limit = SizeLimit(get_settings().max_upload_bytes)

    def open_file(name: str) -> IncomingFile:
        return IncomingFile(spool_dir=store.spool_dir, filename=name, limit=limit)

    files, fields = await stream_parts(request, open_file, file_parts=(FILE_PART, LINES_PART))
    try:
        return await run_in_threadpool(_import, user, fields, files)
    finally:
        for received in files.values():
            received.path.unlink(missing_ok=True)


def _import(user: Principal, fields: dict[str, str], files: dict[str, Any]) -> dict[str, Any]:
    kind, platform = fields.get("kind", ""), fields.get("platform", "")
    problems = []
    if kind not in KINDS:
        problems.append(FieldProblem("kind", "enum", f"one of {', '.join(KINDS)}"))
    if platform not in PLATFORMS:
        problems.append(FieldProblem("platform", "enum", f"one of {', '.join(PLATFORMS)}"))
    if FILE_PART not in files:
        problems.append(FieldProblem(FILE_PART, "required", "the export, in a part named file with a file name"))
    if LINES_PART in files and kind != "orders":
        problems.append(FieldProblem(LINES_PART, "orders", "order lines go with an order import only"))
    source = fields.get("source") or None
    if kind == "ads" and source not in AD_SOURCES:
        problems.append(FieldProblem("source", "enum", f"an ad report's channel: one of {', '.join(AD_SOURCES)}"))
    if kind != "ads" and source is not None:
        problems.append(FieldProblem("source", "ads", "a channel goes with an ad import only"))
    if problems:
        raise ValidationFailed("the import is incomplete", problems=problems)
    mapping = load_mapping(platform, data_dir=get_settings().data_dir)
    main = files[FILE_PART]
    lines = files.get(LINES_PART)
    run_id = importer.import_file(
        kind,
        main.path,
        mapping,
        actor=user.name,
        lines_path=lines.path if lines else None,
        source=main.filename,
        lines_source=lines.filename if lines else None,
        ad_source=source,
    )
    with read_scope() as session:
        return importer.report(session, run_id)


@router.get("", response_model=list[ImportReport])
def list_imports(
    user: CurrentUser, limit: Annotated[int, Query(ge=1, le=200, description="most recent first")] = 50
) -> list[dict[str, Any]]:
    """The most recent imports with their reports (customer service and managers)."""
    check_may_import_platform_data(user)
    with read_scope() as session:
        return [importer.report_of(session, run) for run in importer.recent_runs(session, limit=limit)]


@router.get("/{import_id}", response_model=ImportReport, responses=error_responses(404))
def get_import(import_id: str, user: CurrentUser) -> dict[str, Any]:
    """One import's report; `queued` is read at this moment."""
    check_may_import_platform_data(user)
    with read_scope() as session:
        return importer.report(session, import_id)
