"""Paid orders join waves (波次) per stock location; a wave closes on its window or its size and runs one fulfilment.

An order's fulfilment_state: in_wave (joined; its wave open or running), exception (left its wave into a case
of its own, customer service reviews it), waybill_printed, picked, packed, shipped, cancelled, or
shipped_outside (the platform reports it shipped or finished while it was still being worked: shipped by
hand outside ecomflow; it leaves its wave, its stock is booked out once by that report, never by the wave).
A wave's order_count is of its live orders: an order that leaves (a case, a cancellation, a shipment
outside) no longer counts, so an open wave takes another order in its place before max_orders closes it.
Concurrency: joining a location's wave first locks the location's row (FOR NO KEY UPDATE on PostgreSQL; SQLite
writes one at a time), so two imports never open two waves for one location, never overfill one and never
start one twice; the order_count UPDATE is guarded by the wave's state and size as well, and an order leaving
an open wave takes the same location lock first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, Location
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderEvent, PlatformOrderLine, Wave
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.events import outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import InstanceState, get_instance, set_instance_state, start_instance
from ecomflow.engine.people.principals import SYSTEM, SYSTEM_ACTOR
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, reserve_order, reserved_lines, settle_order
from ecomflow.engine.tasks.moves import try_move_task
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskAction

PROCESS = "order_fulfilment"
IN_WAVE, EXCEPTION, CANCELLED, SHIPPED = "in_wave", "exception", "cancelled", "shipped"
PRINTED, PICKED, PACKED = "waybill_printed", "picked", "packed"
SHIPPED_OUTSIDE = "shipped_outside"
# States an order is still being worked in; a cancellation or a shipment on the platform ends them.
ACTIVE_ORDER_STATES = (IN_WAVE, EXCEPTION, PRINTED, PICKED, PACKED)
# Platform statuses saying the goods already left: shipped (已发货) or finished (交易成功).
GONE_STATUSES = ("shipped", "completed")
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


def note_many(session: Session, entries: list[tuple[PlatformOrder, str, dict[str, Any]]], *, actor: str) -> None:
    """Add many orders' history entries (order, type, data) in one INSERT, in the caller's transaction."""
    if entries:
        at = utcnow()
        rows = [{"order_id": o.id, "type": t, "actor": actor, "data": data, "at": at} for o, t, data in entries]
        session.execute(insert(PlatformOrderEvent.__table__), rows)


def order_changed(session: Session, order: PlatformOrder, *, before: str | None, actor: str) -> None:
    """React, in the import's transaction, to an order that is new (before None) or whose status changed."""
    if order.status == "paid" and order.wave_id is None and order.fulfilment_state is None:
        join_waves(session, [order], actor=actor)
    elif order.status == "cancelled" and order.fulfilment_state in ACTIVE_ORDER_STATES:
        cancel_order(session, order, actor=actor, reason=f"cancelled on the platform ({order.platform_status})")
    elif order.status in GONE_STATUSES and order.fulfilment_state in ACTIVE_ORDER_STATES:
        ship_outside(session, order, actor=actor)


def orders_created(session: Session, orders: list[PlatformOrder], *, actor: str) -> None:
    """React to a batch of new orders: the paid ones join their waves together (join_waves), the rest one by one.

    They join in the order they were written (their ids), which is the file's."""
    orders = sorted(orders, key=lambda order: order.id)
    joining = [o for o in orders if o.status == "paid" and o.wave_id is None and o.fulfilment_state is None]
    if joining:
        join_waves(session, joining, actor=actor)
    for order in orders:
        if order.fulfilment_state is None and order.wave_id is None and order.status != "paid":
            order_changed(session, order, before=None, actor=actor)


def join_waves(session: Session, orders: list[PlatformOrder], *, actor: str, now: datetime | None = None) -> None:
    """Put paid orders in their locations' open waves, in the order given (a status change joins one alone).

    Per location: its lock once (locations in code order), then per wave one guarded UPDATE of its count,
    one UPDATE of the orders it takes and one INSERT of their history; a full wave closes and starts at once.
    """
    now = now or utcnow()
    settings = get_definitions().wave
    session.flush()  # the orders need their ids for their history
    wanted = {order.location or ONLINE_WAREHOUSE for order in orders}
    known = set(session.scalars(select(Location.code).where(Location.code.in_(sorted(wanted)))))
    by_location: dict[str, list[PlatformOrder]] = {}
    for order in orders:
        location = order.location or ONLINE_WAREHOUSE
        by_location.setdefault(location if location in known else ONLINE_WAREHOUSE, []).append(order)
    for location in sorted(by_location):
        session.scalar(select(Location.code).where(Location.code == location).with_for_update(key_share=True))
        pending = by_location[location]
        while pending:
            wave = _open_wave(session, location, now=now, window=settings.window)
            room = settings.max_orders - wave.order_count
            if room <= 0:  # a wave left full (max_orders lowered since): close it and take the next
                close_wave(session, wave, reason="max_orders", now=now)
                continue
            taken, pending = pending[:room], pending[room:]
            counted = session.execute(
                update(Wave)
                .where(Wave.id == wave.id, Wave.state == OPEN, Wave.order_count + len(taken) <= settings.max_orders)
                .values(order_count=Wave.order_count + len(taken))
                .execution_options(synchronize_session=False)
            )
            if counted.rowcount != 1:  # cannot happen under the location lock; refuse rather than overfill
                raise RuntimeError(f"wave {wave.id} at {location} took no more orders")
            session.refresh(wave)
            _put_in_wave(session, taken, wave.id)
            entries = [(o, "joined_wave", {"wave_id": wave.id, "location": location}) for o in taken]
            note_many(session, entries, actor=actor)
            if wave.order_count >= settings.max_orders:
                close_wave(session, wave, reason="max_orders", now=now)


def _open_wave(session: Session, location: str, *, now: datetime, window: Any) -> Wave:
    """Return the location's open wave, opening one if there is none (the caller holds the location's lock)."""
    wave = session.scalar(select(Wave).where(Wave.location == location, Wave.state == OPEN).order_by(Wave.id).limit(1))
    if wave is None:
        wave = Wave(location=location, state=OPEN, opened_at=now, closes_at=now + window, order_count=0)
        session.add(wave)
        session.flush()
    return wave


def _put_in_wave(session: Session, orders: list[PlatformOrder], wave_id: int) -> None:
    """Mark the orders in_wave in the wave with one UPDATE; the loaded objects follow."""
    for start in range(0, len(orders), 500):
        ids = [order.id for order in orders[start : start + 500]]
        session.execute(
            update(PlatformOrder)
            .where(PlatformOrder.id.in_(ids))
            .values(wave_id=wave_id, fulfilment_state=IN_WAVE)
            .execution_options(synchronize_session=False)
        )
    for order in orders:
        set_committed_value(order, "wave_id", wave_id)
        set_committed_value(order, "fulfilment_state", IN_WAVE)


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
        _uncount(session, left)
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
    _lock_if_open(session, order.wave_id)
    released = [
        line
        for key in reservation_keys(order)
        for line in settle_order(session, key=key, kind="release", actor=actor, instance_id=None)
    ]
    order.fulfilment_state = CANCELLED
    note(session, order, "cancelled", actor=actor, reason=reason, stock_released=released)
    _leave(session, order, actor=actor, reason=reason)
    return released


def ship_outside(session: Session, order: PlatformOrder, *, actor: str) -> list[dict[str, Any]]:
    """Take an order the platform reports shipped or finished out of its wave; book its stock out once, now.

    Its reservation (its own or its inquiry's) ships under its key; an order not yet reserved (before 审单, or
    in a case) is reserved and shipped under its own key at once. Stock short for that (the ledger never goes
    below zero) books nothing out and says so in the order's history: the count must be corrected by hand.
    The wave's later steps skip it (it is no longer in_wave, picked or packed), and its book_out ships only
    packed orders, so the goods are never booked out twice nor put on the wave's delivery upload.
    """
    reason = f"shipped outside ecomflow ({order.platform_status})"
    _lock_if_open(session, order.wave_id)
    booked = [
        line
        for key in reservation_keys(order)
        for line in settle_order(session, key=key, kind="ship", actor=actor, instance_id=None)
    ]
    short: list[dict[str, Any]] = []
    if not any(reserved_lines(session, key) for key in reservation_keys(order)):
        booked, short = _reserve_and_ship(session, order, actor=actor)
    order.fulfilment_state = SHIPPED_OUTSIDE
    note(
        session,
        order,
        SHIPPED_OUTSIDE,
        actor=actor,
        reason=reason,
        carrier=order.carrier,
        tracking_no=order.tracking_no,
        stock_booked_out=booked,
        stock_short=short,
    )
    _leave(session, order, actor=actor, reason=reason)
    return booked


def _reserve_and_ship(session: Session, order: PlatformOrder, *, actor: str) -> tuple[list, list]:
    """Book out an order that held no reservation: reserve then ship its lines under its own key."""
    lines = session.scalars(
        select(PlatformOrderLine).where(PlatformOrderLine.order_id == order.id).order_by(PlatformOrderLine.line_no)
    )
    wanted = [(line.sku, line.quantity) for line in lines if line.sku is not None]
    if not wanted:
        return [], []
    location = session.get(Wave, order.wave_id).location if order.wave_id is not None else ONLINE_WAREHOUSE
    key = order_key(order)
    result = reserve_order(session, key=key, instance_id=None, lines=wanted, location=location, actor=actor)
    if not result["reserved"]:
        return [], result["short"]
    return settle_order(session, key=key, kind="ship", actor=actor, instance_id=None), []


def _leave(session: Session, order: PlatformOrder, *, actor: str, reason: str) -> None:
    """Leave the order's wave (it no longer counts); a case of its own ends with it."""
    _uncount(session, order.wave_id)
    note(session, order, "left_wave", actor=actor, wave_id=order.wave_id)
    if order.case_instance_id is not None:
        _end_case(session, order.case_instance_id, reason=reason)


def _lock_if_open(session: Session, wave_id: int | None) -> None:
    """Take the open wave's location lock, as join_waves does first, before anything else changes it."""
    if wave_id is None:
        return
    location = session.scalar(select(Wave.location).where(Wave.id == wave_id, Wave.state == OPEN))
    if location is not None:
        session.scalar(select(Location.code).where(Location.code == location).with_for_update(key_share=True))


def _uncount(session: Session, wave_id: int | None) -> None:
    """Count one order fewer in the wave: its count is of the orders still live in it."""
    if wave_id is None:
        return
    session.execute(
        update(Wave)
        .where(Wave.id == wave_id, Wave.order_count > 0)
        .values(order_count=Wave.order_count - 1)
        .execution_options(synchronize_session=False)
    )


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
