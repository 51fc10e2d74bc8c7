"""What the steps of a wave's order_fulfilment do to its orders: 审单 rules, progress, scans, shipping.

Every function works on the orders still in the wave (cancelled and departed orders are skipped) in the
caller's transaction, and writes each order's history with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Variant
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine, Wave
from ecomflow.engine.errors import NotFound
from ecomflow.engine.intake.waves import (
    CANCELLED,
    DONE,
    EXCEPTION,
    IN_WAVE,
    PACKED,
    SHIPPED,
    SHIPPED_OUTSIDE,
    cancel_order,
    inquiry_reservation_keys,
    note,
    note_many,
    open_case,
    order_key,
    reservation_keys,
)
from ecomflow.engine.shop.stock import held_lines, reserve_order, settle_order
from ecomflow.engine.shop.stock_batches import reservations_of, reserve_orders, settle_many


def get_wave(session: Session, wave_id: int) -> Wave:
    """Return the wave or raise NotFound naming it."""
    wave = session.get(Wave, wave_id)
    if wave is None:
        raise NotFound(f"wave {wave_id} does not exist", wave_id=wave_id)
    return wave


def orders_of(session: Session, wave_id: int, *states: str) -> list[PlatformOrder]:
    """Return the wave's orders (in these fulfilment states, if named) with their lines, by order number."""
    query = select(PlatformOrder).where(PlatformOrder.wave_id == wave_id).order_by(PlatformOrder.order_no)
    if states:
        query = query.where(PlatformOrder.fulfilment_state.in_(states))
    return list(session.scalars(query))


def lines_of(session: Session, order_ids: list[int]) -> dict[int, list[PlatformOrderLine]]:
    """Return each order's lines by order id, in line order."""
    rows = session.scalars(
        select(PlatformOrderLine)
        .where(PlatformOrderLine.order_id.in_(order_ids))
        .order_by(PlatformOrderLine.order_id, PlatformOrderLine.line_no)
    )
    found: dict[int, list[PlatformOrderLine]] = {order_id: [] for order_id in order_ids}
    for line in rows:
        found[line.order_id].append(line)
    return found


def _problem(rule: str, message: str) -> dict[str, str]:
    return {"rule": rule, "message": message}


def review_rules(order: PlatformOrder, lines: list[PlatformOrderLine], known_skus: set[str]) -> list[dict[str, str]]:
    """Return why 审单 cannot pass the order by itself (empty: it passes the rules, stock aside)."""
    reasons = []
    if (order.buyer_message or "").strip():
        reasons.append(_problem("buyer_message", f"买家留言: {order.buyer_message.strip()}"))
    if order.address_changed:
        reasons.append(_problem("address_changed", "the buyer changed the address after paying"))
    if (order.risk_flag or "").strip():
        reasons.append(_problem("risk_flag", f"risk flag: {order.risk_flag.strip()}"))
    if not lines:
        reasons.append(_problem("no_lines", "the order has no lines"))
    for line in lines:
        if line.sku is None or line.sku not in known_skus:
            sku = line.sku or "(no merchant code)"
            reasons.append(_problem("unknown_sku", f"line {line.line_no}: SKU {sku} is not in the catalogue"))
    return reasons


def _reserve(session: Session, order: PlatformOrder, lines: list[PlatformOrderLine], instance_id: str | None):
    """Reserve the order's lines by its key; an inquiry's order keeps what its inquiry reserved."""
    if order.inquiry_instance_id is not None:
        for key in inquiry_reservation_keys(order.inquiry_instance_id):
            held = held_lines(session, key)
            if held:
                return {"reserved": True, "lines": held, "short": []}
    wanted = [(line.sku, line.quantity) for line in lines if line.sku is not None]
    return reserve_order(
        session,
        key=order_key(order),
        instance_id=instance_id,
        lines=wanted,
        location=_location(session, order),
        actor="system",
    )


def _location(session: Session, order: PlatformOrder) -> str:
    """Return where the order is reserved and shipped from: its wave's location."""
    return get_wave(session, order.wave_id).location


def _short_reasons(result: dict[str, Any]) -> list[dict[str, str]]:
    return [
        _problem("stock_short", f"SKU {s['sku']} at {s['location']}: wanted {s['wanted']}, available {s['available']}")
        for s in result["short"]
    ]


def review_wave(session: Session, wave_id: int, *, instance_id: str) -> dict[str, Any]:
    """审单 by rules: reserve each passing order; every exception leaves into a case of its own. Return the tally.

    The passing orders are reserved in one pass over the ledger (stock_batches), each all or nothing, in
    order-number order as before; an inquiry's order keeps what its inquiry reserved.
    """
    wave = get_wave(session, wave_id)
    orders = orders_of(session, wave_id, IN_WAVE)
    lines = lines_of(session, [order.id for order in orders])
    skus = {line.sku for found in lines.values() for line in found if line.sku}
    known = set(session.scalars(select(Variant.code).where(Variant.code.in_(skus)))) if skus else set()
    reasons_of = {order.id: review_rules(order, lines[order.id], known) for order in orders}
    plain = [o for o in orders if not reasons_of[o.id] and o.inquiry_instance_id is None]
    reserved = reserve_orders(
        session,
        orders=[(order_key(o), [(x.sku, x.quantity) for x in lines[o.id] if x.sku is not None]) for o in plain],
        location=wave.location,
        actor="system",
        instance_id=instance_id,
    )
    passed, exceptions, notes = [], [], []
    for order in orders:
        reasons = reasons_of[order.id]
        if not reasons:
            if order.inquiry_instance_id is None:
                result = reserved[order_key(order)]
            else:
                result = _reserve(session, order, lines[order.id], instance_id)
            reasons = [] if result["reserved"] else _short_reasons(result)
        if reasons:
            case = open_case(session, order, reasons=reasons, actor="system")
            exceptions.append({"order_no": order.order_no, "case_instance_id": case.instance_id, "reasons": reasons})
        else:
            notes.append((order, "reviewed", {"result": "pass", "wave_id": wave_id}))
            passed.append(order.order_no)
    note_many(session, notes, actor="system")
    if not passed:
        wave.state = DONE  # every order left: nothing more to work in it
    return {"passed": passed, "exceptions": exceptions}


def review_case(session: Session, wave_id: int, *, decision: str, by: str, notes: str, instance_id: str):
    """Apply customer service's review of a case: pass reserves its stock (reasons if still short), cancel ends it."""
    orders = orders_of(session, wave_id, EXCEPTION)
    if not orders:  # cancelled on the platform meanwhile, or a replay after the decision was applied
        return {"order_no": None, "result": "gone", "reasons": []}
    order = orders[0]
    if decision == "cancel_order":
        released = cancel_order(session, order, actor=by, reason=notes or "cancelled at 审单")
        return {"order_no": order.order_no, "result": "cancelled", "stock_released": released, "reasons": []}
    result = _reserve(session, order, lines_of(session, [order.id])[order.id], instance_id)
    if not result["reserved"]:
        return {"order_no": order.order_no, "result": "short", "reasons": _short_reasons(result)}
    order.fulfilment_state = IN_WAVE
    note(session, order, "reviewed", actor=by, result="pass", notes=notes, wave_id=wave_id)
    return {"order_no": order.order_no, "result": "pass", "reasons": []}


def advance(session: Session, wave_id: int, *, source: str, target: str, event: str, by: str, **data: Any) -> list[str]:
    """Move the wave's orders in `source` to `target`, each with a history entry; return their numbers."""
    orders = orders_of(session, wave_id, source)
    _set_state(session, orders, target)
    note_many(session, [(order, event, {"wave_id": wave_id, **data}) for order in orders], actor=by)
    return [order.order_no for order in orders]


def _set_state(session: Session, orders: list[PlatformOrder], state: str, **values: Any) -> None:
    """Set the orders' fulfilment state (and these columns) in one UPDATE; the loaded objects follow."""
    if not orders:
        return
    now = utcnow()
    for part in range(0, len(orders), 500):
        ids = [order.id for order in orders[part : part + 500]]
        session.execute(
            update(PlatformOrder)
            .where(PlatformOrder.id.in_(ids))
            .values(fulfilment_state=state, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
    for order in orders:
        set_committed_value(order, "fulfilment_state", state)
        set_committed_value(order, "updated_at", now)
        for name, value in values.items():
            set_committed_value(order, name, value)


def apply_scans(session: Session, wave_id: int, form: dict[str, Any], *, by: str, source: str) -> dict[str, Any]:
    """验货打包: ok scans (or all_ok) pack orders; a problem scan sends its order into a case; findings."""
    orders = {order.order_no: order for order in orders_of(session, wave_id, source)}
    scans = {scan["order_no"]: scan for scan in form.get("scans") or []}
    gone = _left(session, wave_id)
    findings = [
        _finding(f"scans[{i}].order_no", "not_in_wave", f"order {no} is not waiting to be packed in wave {wave_id}")
        for i, no in enumerate(scans)
        if no not in orders and no not in gone
    ]
    if not form.get("all_ok"):
        findings += [
            _finding("scans", "every_order_scanned", f"order {no} has no scan (scan it, or tick all_ok)")
            for no in orders
            if no not in scans
        ]
    if findings:
        return {"findings": findings, "packed": [], "problems": []}
    packed, problems, ok = [], [], []
    for no, order in orders.items():
        scan = scans.get(no, {"result": "ok"})
        if scan["result"] == "problem":
            reason = _problem("pack_problem", f"验货打包: {scan.get('note') or 'a problem was found'}")
            case = open_case(session, order, reasons=[reason], actor=by)
            problems.append({"order_no": no, "case_instance_id": case.instance_id})
        else:
            ok.append((order, "packed", {"wave_id": wave_id, "note": scan.get("note") or ""}))
            packed.append(no)
    _set_state(session, [order for order, _, _ in ok], PACKED)
    note_many(session, ok, actor=by)
    if not packed:
        get_wave(session, wave_id).state = DONE
    return {"findings": [], "packed": packed, "problems": problems}


def _left(session: Session, wave_id: int) -> set[str]:
    """Return the orders that left the wave on the platform's word (cancelled, shipped outside).

    A form shown before they left may still name them: they are skipped, not findings."""
    return {order.order_no for order in orders_of(session, wave_id, CANCELLED, SHIPPED_OUTSIDE)}


def _finding(field: str, rule: str, message: str) -> dict[str, str]:
    return {"field": field, "rule": rule, "message": message}


def check_shipments(session: Session, wave_id: int, shipments: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Return what the ship form lacks: a tracking number for every packed order, none for an order not in the wave."""
    packed = {order.order_no for order in orders_of(session, wave_id, PACKED)}
    gone = _left(session, wave_id)
    named = [shipment["order_no"] for shipment in shipments]
    findings = [
        _finding(f"shipments[{i}].order_no", "not_in_wave", f"order {no} is not packed in wave {wave_id}")
        for i, no in enumerate(named)
        if no not in packed and no not in gone
    ]
    findings += [
        _finding(f"shipments[{i}].order_no", "unique", f"order {no} is named twice")
        for i, no in enumerate(named)
        if no in named[:i]
    ]
    findings += [
        _finding("shipments", "every_order_shipped", f"packed order {no} has no tracking number")
        for no in sorted(packed - set(named))
    ]
    return findings


def ship_wave(session: Session, wave_id: int, shipments: list[dict[str, Any]], *, by: str, instance_id: str):
    """发货: book each packed order's stock out (once per order key), keep its tracking number, close the wave.

    The reservations this wave's instance made are shipped in one pass over the ledger; an order reserved
    elsewhere (its inquiry, an earlier wave before it became a case) is settled by its keys, as before.
    """
    by_no = {shipment["order_no"]: shipment for shipment in shipments}
    orders = orders_of(session, wave_id, PACKED)
    own = reservations_of(session, instance_id=instance_id, keys=[order_key(o) for o in orders]) if instance_id else {}
    moved_of: dict[str, list[dict[str, Any]]] = {}
    batch = [m for o in orders if o.inquiry_instance_id is None for m in own.get(order_key(o), [])]
    for line in settle_many(session, reservations=batch, kind="ship", actor=by, instance_id=instance_id):
        moved_of.setdefault(line.business_key[: -len(line.sku) - 1], []).append(
            {"sku": line.sku, "location": line.location, "quantity": line.quantity}
        )
    shipped, notes = [], []
    for order in orders:
        if order.inquiry_instance_id is not None or order_key(order) not in own:
            moved = [
                line
                for key in reservation_keys(order)
                for line in settle_order(session, key=key, kind="ship", actor=by, instance_id=instance_id)
            ]
        else:
            moved = sorted(moved_of.get(order_key(order), []), key=lambda line: line["sku"])
        shipment = by_no[order.order_no]
        order.carrier, order.tracking_no = shipment["carrier"], shipment["tracking_no"]
        data = {"wave_id": wave_id, "carrier": shipment["carrier"], "tracking_no": shipment["tracking_no"]}
        notes.append((order, "shipped", data))
        shipped.append({"order_no": order.order_no, "stock_moved": moved})
    _set_state(session, orders, SHIPPED)
    note_many(session, notes, actor=by)
    wave = get_wave(session, wave_id)
    wave.state = DONE
    cancelled = [order.order_no for order in orders_of(session, wave_id, CANCELLED)]
    return {"shipped": shipped, "cancelled": cancelled}


def find_order(session: Session, platform: str, order_no: str) -> PlatformOrder:
    """Return the platform's order or raise NotFound naming it."""
    order = session.scalar(
        select(PlatformOrder).where(PlatformOrder.platform == platform, PlatformOrder.order_no == order_no)
    )
    if order is None:
        raise NotFound(f"no {platform} order {order_no}", platform=platform, order_no=order_no)
    return order
