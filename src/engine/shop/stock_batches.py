"""The stock ledger for many orders at once (a wave's 审单 and 发货): a few statements per batch, not per line.

Same guarantees as stock.move, made set-based: each (kind, business key) happens once (one SELECT finds the
ones already made, a replay makes nothing again); a balance never goes below zero (one guarded UPDATE per SKU
and location, in SKU order, the order stock.reserve_order locks in); every movement has its audit event, in
the same transaction. A concurrent replay that inserted some of the same movements first makes the batch fall
back to stock.move line by line, which counts the replay's rows instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Location, StockBalance, StockMovement, Variant
from ecomflow.engine.errors import NotFound, StockShort
from ecomflow.engine.events.audit import record_events
from ecomflow.engine.shop.stock import (
    EFFECTS,
    _check_movement,
    balance,
    change_balance,
    line_key,
    merge_lines,
    move,
)

# Keys per IN list: well under SQLite's bound-variable limit, few round trips on PostgreSQL.
CHUNK = 500
SETTLING = ("release", "ship", "store_pickup")


@dataclass(frozen=True)
class Line:
    """One movement to make: what, where, how many, under which business key."""

    sku: str
    location: str
    quantity: int
    business_key: str


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def made_keys(session: Session, kind: str, keys: Sequence[str]) -> set[str]:
    """Return which of these business keys already have a movement of this kind."""
    found: set[str] = set()
    for part in _chunks(list(keys)):
        query = select(StockMovement.business_key).where(
            StockMovement.kind == kind, StockMovement.business_key.in_(part)
        )
        found.update(session.scalars(query))
    return found


def move_many(session: Session, *, kind: str, lines: Sequence[Line], actor: str, instance_id: str | None) -> list[Line]:
    """Make each line's movement once per (kind, business key); return the lines made now (not a replay's).

    Raises StockShort naming the first SKU and location that would go below zero; nothing of the batch is kept.
    """
    for line in lines:
        _check_movement(kind, line.quantity, None, line.business_key)
    done = made_keys(session, kind, [line.business_key for line in lines])
    todo = [line for line in lines if line.business_key not in done]
    if not todo:
        return []
    _check_known(session, todo)
    on_hand_sign, reserved_sign = EFFECTS[kind]
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for line in todo:
        totals[(line.sku, line.location)] += line.quantity
    now = utcnow()
    try:
        with session.begin_nested():
            session.execute(
                insert(StockMovement.__table__),
                [
                    {
                        "kind": kind,
                        "sku": line.sku,
                        "location": line.location,
                        "quantity": line.quantity,
                        "business_key": line.business_key,
                        "reason": None,
                        "instance_id": instance_id,
                        "actor": actor,
                        "created_at": now,
                    }
                    for line in todo
                ],
            )
            for (sku, location), quantity in sorted(totals.items()):
                d_on_hand, d_reserved = on_hand_sign * quantity, reserved_sign * quantity
                if not change_balance(session, sku, location, on_hand=d_on_hand, reserved=d_reserved, at=now):
                    raise _Short(sku, location, quantity)
    except IntegrityError:
        # A concurrent replay made some of them first: line by line, its rows count.
        return [line for line in todo if _move_one(session, kind, line, actor, instance_id)]
    except _Short as short:
        figures = balance(session, sku=short.sku, location=short.location)
        have = figures["reserved"] if kind in SETTLING else figures["available"]
        raise StockShort(sku=short.sku, location=short.location, wanted=short.quantity, available=have) from None
    record_events(
        session,
        [
            {
                "type": f"stock.{kind}",
                "actor": actor,
                "instance_id": instance_id,
                "data": {
                    "sku": line.sku,
                    "location": line.location,
                    "quantity": line.quantity,
                    "business_key": line.business_key,
                    "reason": None,
                },
                "at": now,
            }
            for line in todo
        ],
    )
    return todo


class _Short(Exception):
    """A guarded UPDATE changed no row."""

    def __init__(self, sku: str, location: str, quantity: int) -> None:
        super().__init__(sku, location, quantity)
        self.sku, self.location, self.quantity = sku, location, quantity


def _move_one(session: Session, kind: str, line: Line, actor: str, instance_id: str | None) -> bool:
    moved = move(
        session,
        kind=kind,
        sku=line.sku,
        location=line.location,
        quantity=line.quantity,
        business_key=line.business_key,
        actor=actor,
        instance_id=instance_id,
    )
    return moved.made


def _check_known(session: Session, lines: Sequence[Line]) -> None:
    skus = sorted({line.sku for line in lines})
    known = set(session.scalars(select(Variant.code).where(Variant.code.in_(skus))))
    for sku in skus:
        if sku not in known:
            raise NotFound(f"no SKU {sku} in the catalogue", sku=sku)
    for location in sorted({line.location for line in lines}):
        if session.get(Location, location) is None:
            raise NotFound(f"no stock location {location}", location=location)


def reserve_orders(
    session: Session,
    *,
    orders: Sequence[tuple[str, list[tuple[str, int]]]],
    location: str,
    actor: str,
    instance_id: str | None,
) -> dict[str, dict[str, Any]]:
    """Reserve many orders at one location, each all its lines or none, in the order given; once per key.

    Returns {key: reserve_order's result}: an order already reserved under its key (a replay) counts as
    reserved with what it holds; a short one names each short SKU with what was left for it.
    """
    wanted = {key: merge_lines(lines) for key, lines in orders}
    keys_of = {key: [line_key(key, sku) for sku, _ in lines] for key, lines in wanted.items()}
    order_of_line = {k: key for key, keys in keys_of.items() for k in keys}
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for part in _chunks(list(order_of_line)):
        rows = session.execute(
            select(StockMovement.business_key, StockMovement.sku, StockMovement.quantity).where(
                StockMovement.kind == "reserve", StockMovement.business_key.in_(part)
            )
        )
        for business_key, sku, quantity in rows:
            held[order_of_line[business_key]].append({"sku": sku, "quantity": quantity})
    if session.get(Location, location) is None:
        raise NotFound(f"no stock location {location}", location=location)
    skus = sorted({sku for lines in wanted.values() for sku, _ in lines})
    available = _lock_available(session, skus, location)
    results: dict[str, dict[str, Any]] = {}
    to_make: list[Line] = []
    for key, lines in wanted.items():
        if held.get(key):
            lines_held = sorted(held[key], key=_by_sku)
            results[key] = {"reserved": True, "location": location, "lines": lines_held, "short": []}
            continue
        short = [
            {"sku": sku, "location": location, "wanted": qty, "available": available.get(sku, 0)}
            for sku, qty in lines
            if available.get(sku, 0) < qty
        ]
        if short:
            results[key] = {"reserved": False, "location": location, "lines": [], "short": short}
            continue
        for sku, qty in lines:
            available[sku] -= qty
            to_make.append(Line(sku=sku, location=location, quantity=qty, business_key=line_key(key, sku)))
        results[key] = {
            "reserved": True,
            "location": location,
            "lines": [{"sku": s, "quantity": q} for s, q in lines],
            "short": [],
        }
    move_many(session, kind="reserve", lines=to_make, actor=actor, instance_id=instance_id)
    return results


def _by_sku(line: dict[str, Any]) -> str:
    return line["sku"]


def _lock_available(session: Session, skus: Sequence[str], location: str) -> dict[str, int]:
    """Return the available stock of each SKU at the location, its balance row locked (SKU order) until commit."""
    query = (
        select(StockBalance.sku, StockBalance.on_hand - StockBalance.reserved)
        .where(StockBalance.location == location, StockBalance.sku.in_(list(skus)))
        .order_by(StockBalance.sku)
        .with_for_update(of=StockBalance)
    )
    return {sku: int(free) for sku, free in session.execute(query)}


def reservations_of(session: Session, *, instance_id: str, keys: Sequence[str]) -> dict[str, list[StockMovement]]:
    """Return the reserve movements an instance made, by the order key they were made under (only these keys)."""
    wanted = set(keys)
    found: dict[str, list[StockMovement]] = defaultdict(list)
    query = select(StockMovement).where(StockMovement.kind == "reserve", StockMovement.instance_id == instance_id)
    for movement in session.scalars(query.order_by(StockMovement.sku)):
        key = movement.business_key[: -len(movement.sku) - 1]
        if key in wanted and movement.business_key == line_key(key, movement.sku):
            found[key].append(movement)
    return found


def settle_many(
    session: Session, *, reservations: Sequence[StockMovement], kind: str, actor: str, instance_id: str | None
) -> list[Line]:
    """Settle (release, ship, store_pickup) each reserved line once; a line settled another way is left alone."""
    if kind not in SETTLING:
        raise ValueError(f"an order's reservation is settled by release, ship or store_pickup, not {kind}")
    keys = [m.business_key for m in reservations]
    other: set[str] = set()
    for part in _chunks(keys):
        query = select(StockMovement.business_key).where(
            StockMovement.kind.in_([k for k in SETTLING if k != kind]), StockMovement.business_key.in_(part)
        )
        other.update(session.scalars(query))
    lines = [
        Line(sku=m.sku, location=m.location, quantity=m.quantity, business_key=m.business_key)
        for m in reservations
        if m.business_key not in other
    ]
    return move_many(session, kind=kind, lines=lines, actor=actor, instance_id=instance_id)
