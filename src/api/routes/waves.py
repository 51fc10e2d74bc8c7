"""Waves (波次): the orders of one, and the files its warehouse steps work from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.order_schemas import FileLink, WaveOrderOut, WaveOut
from ecomflow.engine.access import may_see_wave
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.platform_models import Wave
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.errors import NotFound
from ecomflow.engine.intake import wave_files
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
