"""Waves (波次): the orders of one, and the files its warehouse steps work from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ecomflow.api.delivery import deliver_now
from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.order_schemas import FileLink, WaveOrderOut, WaveOut
from ecomflow.api.presenters import present_task
from ecomflow.api.schemas import TaskOut
from ecomflow.api.uploads import FILE_PART, multipart_body, stream_parts
from ecomflow.engine.access import may_see_wave
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.platform_models import Wave
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import NotFound, ValidationFailed
from ecomflow.engine.events.outbox import new_message_ids
from ecomflow.engine.files.incoming import IncomingFile, SizeLimit
from ecomflow.engine.files.storage import get_store
from ecomflow.engine.intake import shipment_files, wave_files
from ecomflow.engine.intake.fulfilment import get_wave, orders_of
from ecomflow.engine.people.principals import Principal

router = APIRouter(prefix="/waves", tags=["waves"], responses=error_responses(401, 404, 422))
CSV = "text/csv; charset=utf-8"
# A wave id is a BIGINT: a larger number would be an error of the database, not a missing wave.
WaveId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the wave's id")]


def _visible_wave(session: Session, wave_id: int, user: Principal) -> Wave:
    """Return the wave if the user may see it; a wave they may not see does not exist for them."""
    wave = get_wave(session, wave_id)
    instance = session.get(ProcessInstance, wave.instance_id) if wave.instance_id else None
    if not may_see_wave(session, user, instance):
        raise NotFound(f"wave {wave_id} does not exist", wave_id=wave_id)
    return wave


def _download(content: bytes, media_type: str, name: str) -> Response:
    return Response(content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{wave_id}", response_model=WaveOut)
def get_wave_page(wave_id: WaveId, user: CurrentUser) -> WaveOut:
    """Return a wave, its orders with where each stands, and links to its files."""
    with read_scope() as session:
        wave = _visible_wave(session, wave_id, user)
        orders = [
            WaveOrderOut(
                platform=o.platform, order_no=o.order_no, fulfilment_state=o.fulfilment_state, tracking_no=o.tracking_no
            )
            for o in orders_of(session, wave_id)
        ]
        names = ["waybills.csv", "pick-list.csv"] + (["delivery-upload"] if wave.state == "done" else [])
        return WaveOut(
            id=wave.id,
            location=wave.location,
            state=wave.state,
            opened_at=wave.opened_at,
            closes_at=wave.closes_at,
            closed_at=wave.closed_at,
            order_count=wave.order_count,
            instance_id=wave.instance_id,
            orders=orders,
            files=[FileLink(**link) for link in wave_files.file_links(wave_id, *names)],
        )


@router.get("/{wave_id}/waybills.csv", response_class=Response, responses={200: {"content": {CSV: {}}}})
def get_waybills(wave_id: WaveId, user: CurrentUser) -> Response:
    """Return the courier batch-print input: one row per order (masked phone, address, goods, pieces)."""
    with read_scope() as session:
        _visible_wave(session, wave_id, user)
        return _download(wave_files.waybills_csv(session, wave_id), CSV, f"wave-{wave_id}-waybills.csv")


@router.get("/{wave_id}/pick-list.csv", response_class=Response, responses={200: {"content": {CSV: {}}}})
def get_pick_list(wave_id: WaveId, user: CurrentUser) -> Response:
    """Return the pick list (配货单): SKU totals at the wave's location over its orders still to ship."""
    with read_scope() as session:
        _visible_wave(session, wave_id, user)
        return _download(wave_files.pick_list_csv(session, wave_id), CSV, f"wave-{wave_id}-pick-list.csv")


@router.get(
    "/{wave_id}/delivery-upload",
    response_class=Response,
    responses={200: {"content": {CSV: {}, wave_files.XLSX_MEDIA_TYPE: {}}}},
)
def get_delivery_upload(
    wave_id: WaveId,
    user: CurrentUser,
    platform: Annotated[str | None, Query(description="tmall or jd; needed when the wave shipped both")] = None,
) -> Response:
    """Return the platform's bulk-dispatch upload of the shipped orders: Tmall/Taobao CSV, JD XLSX."""
    with read_scope() as session:
        _visible_wave(session, wave_id, user)
        content, media_type, name = wave_files.delivery_upload(session, wave_id, platform)
        return _download(content, media_type, name)


_SHIPMENTS_BODY = multipart_body(
    {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "the courier's tracking numbers: CSV (UTF-8 with BOM, GBK) or XLSX with "
            "the columns 订单编号 (or 订单号), 物流公司, 运单号",
        }
    },
    required=["file"],
)


@router.post(
    "/{wave_id}/shipments",
    response_model=TaskOut,
    openapi_extra=_SHIPMENTS_BODY,
    responses=error_responses(403, 409, 413),
)
async def upload_shipments(
    wave_id: WaveId, request: Request, user: CurrentUser, background: BackgroundTasks
) -> dict[str, Any]:
    """发货 by file: the courier's tracking numbers complete the wave's ship step, as the typed form would.

    Every row is checked first; any fault (per line: required, max_length, unique, not_in_wave; or a packed
    order left out: every_order_shipped) is a 422 listing them all, with nothing applied."""
    with read_scope() as session:
        _visible_wave(session, wave_id, user)
    store = get_store()
    limit = SizeLimit(get_settings().max_upload_bytes)

    def open_file(name: str) -> IncomingFile:
        return IncomingFile(spool_dir=store.spool_dir, filename=name, limit=limit)

    files, _ = await stream_parts(request, open_file, file_parts=(FILE_PART,))
    try:
        if FILE_PART not in files:
            message = "the tracking-number file, in a part named file with a file name"
            raise ValidationFailed(message, problems=[FieldProblem(FILE_PART, "required", message)])
        received = files[FILE_PART]
        answer, message_ids = await run_in_threadpool(_ship_by_file, wave_id, received.path, received.filename, user)
    finally:
        for received in files.values():
            received.path.unlink(missing_ok=True)
    background.add_task(deliver_now, message_ids)
    return answer


def _ship_by_file(wave_id: int, path: Any, name: str, user: Principal) -> tuple[dict[str, Any], list[Any]]:
    with session_scope() as session:
        task = shipment_files.ship_by_file(session, wave_id, path, name=name, principal=user)
        return jsonable_encoder(present_task(task)), new_message_ids(session)
