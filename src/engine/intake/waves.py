"""Paid orders join waves (波次) per stock location; a wave closes on its window or its size and runs one fulfilment.

An order's fulfilment_state: in_wave (joined; its wave open or running), exception (left its wave into a case
of its own, customer service reviews it), waybill_printed, picked, packed, shipped, or cancelled.
Concurrency: joining a location's wave first locks the location's row (FOR NO KEY UPDATE on PostgreSQL; SQLite
writes one at a time), so two imports never open two waves for one location, never overfill one and never
start one twice; the order_count UPDATE is guarded by the wave's state and size as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, Location
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderEvent, Wave
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import InstanceState, get_instance, set_instance_state, start_instance
from ecomflow.engine.people.principals import SYSTEM, SYSTEM_ACTOR
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, settle_order
from ecomflow.engine.tasks.moves import try_move_task
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskAction

PROCESS = "order_fulfilment"
IN_WAVE, EXCEPTION, CANCELLED, SHIPPED = "in_wave", "exception", "cancelled", "shipped"
PRINTED, PICKED, PACKED = "waybill_printed", "picked", "packed"
# States an order is still being worked in; a cancellation on the platform ends them.
ACTIVE_ORDER_STATES = (IN_WAVE, EXCEPTION, PRINTED, PICKED, PACKED)
OPEN, CLOSED, DONE = "open", "closed", "done"


def order_key(order: PlatformOrder) -> str:
    """Return the business key of the order's stock reservation: one per platform order, whatever replays."""
    return f"order/{order.platform}/{order.order_no}"


def inquiry_reservation_key(instance_id: str, *, partial: bool) -> str:
    """Return the key a presales_order inquiry reserved its order's stock under (a partial one apart)."""
    return f"presales_order/{instance_id}/partial" if partial else f"presales_order/{instance_id}"


def inquiry_reservation_keys(instance_id: str) -> list[str]:
    """Return both keys an inquiry may have reserved under."""
    return [inquiry_reservation_key(instance_id, partial=False), inquiry_reservation_key(instance_id, partial=True)]


def reservation_keys(order: PlatformOrder) -> list[str]:
    """Return every key the order's goods may be reserved under: its own, and its inquiry's if it had one."""
    own = [order_key(order)]
    return own + inquiry_reservation_keys(order.inquiry_instance_id) if order.inquiry_instance_id else own


def note(session: Session, order: PlatformOrder, type: str, *, actor: str, **data: Any) -> None:
    """Add an entry to the order's own history, in the caller's transaction."""
    session.add(PlatformOrderEvent(order_id=order.id, type=type, actor=actor, data=data, at=utcnow()))


def order_changed(session: Session, order: PlatformOrder, *, before: str | None, actor: str) -> None:
    """React, in the import's transaction, to an order that is new (before None) or whose status changed."""
    orders_changed(session, [(order, before)], actor=actor)


def orders_changed(session: Session, changes: Sequence[tuple[PlatformOrder, str | None]], *, actor: str) -> None:
    """React to a batch of new or moved orders: the paid ones join waves together, a cancelled one leaves its own."""
    joining = [order for order, _ in changes if _joins(order)]
    if joining:
        join_waves(session, joining, actor=actor)
    for order, _ in changes:
        if order.status == "cancelled" and order.fulfilment_state in ACTIVE_ORDER_STATES:
            cancel_order(session, order, actor=actor, reason=f"cancelled on the platform ({order.platform_status})")


def _joins(order: PlatformOrder) -> bool:
    return order.status == "paid" and order.wave_id is None and order.fulfilment_state is None


def join_waves(session: Session, orders: Sequence[PlatformOrder], *, actor: str, now: datetime | None = None) -> None:
    """Put paid orders in their location's open wave (opening one if none); a full wave closes and starts at once.

    Set-based, a location at a time (one lock, one count UPDATE per wave filled): an import joins 1,000 orders
    in a few round trips, not five each (profiled: those round trips were most of a PostgreSQL import's time).
    """
    now = now or utcnow()
    session.flush()  # the orders need their ids for their history
    wanted = {order.location or ONLINE_WAREHOUSE for order in orders}
    known = set(session.scalars(select(Location.code).where(Location.code.in_(wanted))))
    by_location: dict[str, list[PlatformOrder]] = {}
    for order in orders:
        location = order.location if order.location in known else ONLINE_WAREHOUSE
        by_location.setdefault(location, []).append(order)
    # Locations in one order, so two imports joining several never wait on each other in a cycle.
    for location in sorted(by_location):
        _join_location(session, location, by_location[location], actor=actor, now=now)


def _join_location(session: Session, location: str, orders: list[PlatformOrder], *, actor: str, now: datetime) -> None:
    settings = get_definitions().wave
    # One joiner per location at a time: the lock is held until the import's transaction ends.
    session.scalar(select(Location.code).where(Location.code == location).with_for_update(key_share=True))
    while orders:
        wave = session.scalar(
            select(Wave).where(Wave.location == location, Wave.state == OPEN).order_by(Wave.id).limit(1)
        )
        if wave is None:
            wave = Wave(location=location, state=OPEN, opened_at=now, closes_at=now + settings.window, order_count=0)
            session.add(wave)
            session.flush()
        room = settings.max_orders - wave.order_count
        if room <= 0:  # a wave left full (the limit lowered since): close it, take the next
            close_wave(session, wave, reason="max_orders", now=now)
            continue
        taking, orders = orders[:room], orders[room:]
        taken = session.execute(
            update(Wave)
            .where(Wave.id == wave.id, Wave.state == OPEN, Wave.order_count + len(taking) <= settings.max_orders)
            .values(order_count=Wave.order_count + len(taking))
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # cannot happen under the location lock; refuse rather than overfill
            raise RuntimeError(f"wave {wave.id} at {location} took no more orders")
        session.refresh(wave)
        for order in taking:
            order.wave_id, order.fulfilment_state = wave.id, IN_WAVE
            note(session, order, "joined_wave", actor=actor, wave_id=wave.id, location=location)
        if wave.order_count >= settings.max_orders:
            close_wave(session, wave, reason="max_orders", now=now)


def close_wave(session: Session, wave: Wave, *, reason: str, now: datetime | None = None) -> bool:
    """Close an open wave and start its order_fulfilment instance, once; return False if it was not open."""
    now = now or utcnow()
    closed = session.execute(
        update(Wave)
        .where(Wave.id == wave.id, Wave.state == OPEN)
        .values(state=CLOSED, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:
        return False
    session.refresh(wave)
    instance = start_instance(
        session,
        definitions=get_definitions(),
        process_key=PROCESS,
        business_key=f"wave-{wave.id}",
        params={"wave_id": wave.id},
        principal=SYSTEM,
    )
    wave.instance_id = instance.id
    record_event(
        session,
        type="wave.closed",
        actor=SYSTEM_ACTOR,
        instance_id=instance.id,
        data={"wave_id": wave.id, "location": wave.location, "orders": wave.order_count, "reason": reason},
    )
    return True


def close_due_waves(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Close the open waves whose window has passed (the sweeper's batch); return how many closed."""
    due = session.scalars(
        select(Wave).where(Wave.state == OPEN, Wave.closes_at <= now).order_by(Wave.closes_at).limit(limit)
    )
    return sum(close_wave(session, wave, reason="window", now=now) for wave in list(due))


def open_case(session: Session, order: PlatformOrder, *, reasons: list[dict[str, str]], actor: str) -> Wave:
    """Take an order out of its wave into a case of its own (a closed wave of one) for customer service to review."""
    left = order.wave_id
    if left is not None:
        session.execute(
            update(Wave)
            .where(Wave.id == left, Wave.order_count > 0)
            .values(order_count=Wave.order_count - 1)
            .execution_options(synchronize_session=False)
        )
    now = utcnow()
    location = order.location or ONLINE_WAREHOUSE
    if session.get(Location, location) is None:
        location = ONLINE_WAREHOUSE
    case = Wave(location=location, state=CLOSED, opened_at=now, closes_at=now, closed_at=now, order_count=1)
    session.add(case)
    session.flush()
    instance = start_instance(
        session,
        definitions=get_definitions(),
        process_key=PROCESS,
        business_key=f"wave-{case.id}",
        params={"wave_id": case.id, "reasons": reasons},
        principal=SYSTEM,
    )
    case.instance_id = instance.id
    order.wave_id, order.fulfilment_state, order.case_instance_id = case.id, EXCEPTION, instance.id
    note(session, order, "exception", actor=actor, reasons=reasons)
    note(session, order, "left_wave", actor=actor, wave_id=left, case_wave_id=case.id, case_instance_id=instance.id)
    return case


def cancel_order(session: Session, order: PlatformOrder, *, actor: str, reason: str) -> list[dict[str, Any]]:
    """End an order's fulfilment: release its reservation, leave its wave; a case of its own ends with it."""
    released = [
        line
        for key in reservation_keys(order)
        for line in settle_order(session, key=key, kind="release", actor=actor, instance_id=None)
    ]
    order.fulfilment_state = CANCELLED
    note(session, order, "cancelled", actor=actor, reason=reason, stock_released=released)
    note(session, order, "left_wave", actor=actor, wave_id=order.wave_id)
    if order.case_instance_id is not None:
        _end_case(session, order.case_instance_id, reason=reason)
    return released


def _end_case(session: Session, instance_id: str, *, reason: str) -> None:
    """Cancel an order's own case (its open tasks and run) as the system: the order it worked on is gone."""
    instance = get_instance(session, instance_id)
    if not set_instance_state(session, instance=instance, state=InstanceState.CANCELLED, reason=reason):
        return
    now = utcnow()
    open_tasks = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.state.in_(ACTIVE_STATES))
    )
    for task in list(open_tasks):
        try_move_task(session, task, TaskAction.CANCEL, actor=SYSTEM_ACTOR, reason=reason, at=now)
    outbox.enqueue(session, kind=outbox.CANCEL_RUN, instance_id=instance_id)
