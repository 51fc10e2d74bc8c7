"""The stock ledger: every change of stock is a movement, made once per (kind, business key).

Kinds and what each does to a SKU's stock at one location:
- reserve       reserved += q   (an order holds goods; refused when available < q)
- release       reserved -= q   (an order let them go)
- ship          on_hand -= q, reserved -= q   (the reserved goods left the warehouse)
- store_pickup  on_hand -= q, reserved -= q   (the customer collected them at the store)
- restock       on_hand += q    (a return passed inspection and is back on the shelf)
- exchange_out  on_hand -= q    (the replacement of an exchange left; refused when available < q)
- adjust        on_hand += q, q signed, a reason required (a count, a correction, an import)

Available is on_hand - reserved. On-hand and available are the movements summed (see derived_balance);
stock_balances holds that sum per SKU and location, changed in the movement's transaction by one guarded
UPDATE whose WHERE refuses any result below zero. The UPDATE takes the row's lock on PostgreSQL and is
re-checked against the committed row, so concurrent reservations never oversell; SQLite writes one at a
time. A refusal (StockShort) names the SKU and the location.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Location, StockBalance, StockMovement, Variant
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import NotFound, StockShort, ValidationFailed
from ecomflow.engine.events.audit import record_event

# kind -> (sign on on_hand, sign on reserved)
EFFECTS: dict[str, tuple[int, int]] = {
    "reserve": (0, 1),
    "release": (0, -1),
    "ship": (-1, -1),
    "store_pickup": (-1, -1),
    "restock": (1, 0),
    "exchange_out": (-1, 0),
    "adjust": (1, 0),
}
KINDS = tuple(EFFECTS)
# The online warehouse: where online orders are reserved and shipped from unless a store is named.
ONLINE_WAREHOUSE = "WH-ONLINE"


@dataclass(frozen=True)
class Moved:
    """A movement, and whether this call made it (False: a replay found it already made)."""

    movement: StockMovement
    made: bool


def _problem(field: str, rule: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, problems=[FieldProblem(field=field, rule=rule, message=message)])


def _check_movement(kind: str, quantity: int, reason: str | None, business_key: str) -> None:
    if kind not in EFFECTS:
        raise _problem("kind", "enum", f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise _problem("quantity", "type", f"quantity must be a whole number, got {quantity!r}")
    if kind == "adjust":
        if quantity == 0:
            raise _problem("quantity", "non_zero", "an adjustment moves at least one unit")
        if not (reason or "").strip():
            raise _problem("reason", "required", "an adjustment needs a reason")
    elif quantity <= 0:
        raise _problem("quantity", "positive", f"a {kind} moves a positive quantity, got {quantity}")
    if not business_key or len(business_key) > 200:
        raise _problem("business_key", "length", "the business key is 1 to 200 characters")


def _ensure_balance(session: Session, sku: str, location: str) -> None:
    """Create the SKU's zero balance at the location unless it exists (race-free on both databases)."""
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        make(StockBalance)
        .values(sku=sku, location=location, on_hand=0, reserved=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )


def change_balance(session: Session, sku: str, location: str, *, on_hand: int, reserved: int, at: datetime) -> bool:
    """Add the deltas to the SKU's balance at the location; False (nothing changed) if that would break the guard.

    The guard: the row changes only if neither figure goes below zero nor reserved above on-hand.
    """
    _ensure_balance(session, sku, location)
    changed = session.execute(
        update(StockBalance)
        .where(
            StockBalance.sku == sku,
            StockBalance.location == location,
            StockBalance.reserved + reserved >= 0,
            StockBalance.on_hand + on_hand >= StockBalance.reserved + reserved,
        )
        .values(on_hand=StockBalance.on_hand + on_hand, reserved=StockBalance.reserved + reserved, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1


def find_movement(session: Session, *, kind: str, business_key: str) -> StockMovement | None:
    """Return the movement of this kind under this business key, if it was made."""
    return session.scalar(
        select(StockMovement).where(StockMovement.kind == kind, StockMovement.business_key == business_key)
    )


def move(
    session: Session,
    *,
    kind: str,
    sku: str,
    location: str,
    quantity: int,
    business_key: str,
    actor: str,
    reason: str | None = None,
    instance_id: str | None = None,
) -> Moved:
    """Make one movement, exactly once per (kind, business_key), audited in the same transaction.

    Raises StockShort (naming SKU and location) when it would take stock below zero, ValidationFailed
    for a bad kind, quantity or missing reason, NotFound for an unknown SKU or location.
    """
    _check_movement(kind, quantity, reason, business_key)
    done = find_movement(session, kind=kind, business_key=business_key)
    if done is not None:
        return Moved(done, made=False)
    if session.scalar(select(Variant.id).where(Variant.code == sku)) is None:
        raise NotFound(f"no SKU {sku} in the catalogue", sku=sku)
    if session.get(Location, location) is None:
        raise NotFound(f"no stock location {location}", location=location)
    on_hand_sign, reserved_sign = EFFECTS[kind]
    d_on_hand, d_reserved = on_hand_sign * quantity, reserved_sign * quantity
    try:
        with session.begin_nested():
            movement = StockMovement(
                kind=kind,
                sku=sku,
                location=location,
                quantity=quantity,
                business_key=business_key,
                reason=reason,
                instance_id=instance_id,
                actor=actor,
                created_at=utcnow(),
            )
            session.add(movement)
            session.flush()
            if not change_balance(session, sku, location, on_hand=d_on_hand, reserved=d_reserved, at=utcnow()):
                raise _Short()
    except IntegrityError:
        # A concurrent replay made it first: that one counts.
        done = find_movement(session, kind=kind, business_key=business_key)
        if done is None:
            raise
        return Moved(done, made=False)
    except _Short:
        figures = balance(session, sku=sku, location=location)
        have = figures["reserved"] if kind in ("release", "ship", "store_pickup") else figures["available"]
        raise StockShort(sku=sku, location=location, wanted=abs(quantity), available=have) from None
    record_event(
        session,
        type=f"stock.{kind}",
        actor=actor,
        instance_id=instance_id,
        data={"sku": sku, "location": location, "quantity": quantity, "business_key": business_key, "reason": reason},
    )
    return Moved(movement, made=True)


class _Short(Exception):
    """The guarded UPDATE changed no row: the movement would take stock below zero."""


def balance(session: Session, *, sku: str, location: str) -> dict[str, int]:
    """Return on_hand, reserved and available of a SKU at a location (zeros when it never moved there)."""
    row = session.get(StockBalance, (sku, location), populate_existing=True)
    on_hand, reserved = (row.on_hand, row.reserved) if row is not None else (0, 0)
    return {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


def stock_of(session: Session, sku: str) -> list[dict[str, Any]]:
    """Return a SKU's stock at every location it has moved at, by location code."""
    if session.scalar(select(Variant.id).where(Variant.code == sku)) is None:
        raise NotFound(f"no SKU {sku} in the catalogue", sku=sku)
    rows = session.execute(
        select(StockBalance, Location)
        .join(Location, Location.code == StockBalance.location)
        .where(StockBalance.sku == sku)
        .order_by(StockBalance.location)
    )
    return [
        {
            "location": loc.code,
            "location_name": loc.name,
            "location_kind": loc.kind,
            "on_hand": b.on_hand,
            "reserved": b.reserved,
            "available": b.on_hand - b.reserved,
        }
        for b, loc in rows
    ]


def available_by_sku(session: Session, skus: Iterable[str], *, location: str) -> dict[str, int]:
    """Return the available stock of each SKU at the location (SKUs that never moved there are left out)."""
    rows = session.execute(
        select(StockBalance.sku, StockBalance.on_hand - StockBalance.reserved).where(
            StockBalance.sku.in_(list(skus)), StockBalance.location == location
        )
    )
    return {sku: int(available) for sku, available in rows}


def derived_balance(session: Session, *, sku: str, location: str) -> dict[str, int]:
    """Return on_hand and reserved summed from the movements alone: what stock_balances must always equal."""
    m = StockMovement
    on_hand = func.coalesce(
        func.sum(
            case(
                (m.kind.in_(("restock", "adjust")), m.quantity),
                (m.kind.in_(("ship", "store_pickup", "exchange_out")), -m.quantity),
                else_=0,
            )
        ),
        0,
    )
    reserved = func.coalesce(
        func.sum(
            case(
                (m.kind == "reserve", m.quantity),
                (m.kind.in_(("release", "ship", "store_pickup")), -m.quantity),
                else_=0,
            )
        ),
        0,
    )
    row = session.execute(select(on_hand, reserved).where(m.sku == sku, m.location == location)).one()
    return {"on_hand": int(row[0]), "reserved": int(row[1]), "available": int(row[0]) - int(row[1])}


def movements_of(session: Session, sku: str, *, after: int | None = None, limit: int = 100) -> list[StockMovement]:
    """Return a SKU's movements oldest first, keyset-paged by id."""
    if session.scalar(select(Variant.id).where(Variant.code == sku)) is None:
        raise NotFound(f"no SKU {sku} in the catalogue", sku=sku)
    query = select(StockMovement).where(StockMovement.sku == sku)
    if after is not None:
        query = query.where(StockMovement.id > after)
    return list(session.scalars(query.order_by(StockMovement.id).limit(limit)))


# ── orders: all lines or none ─────────────────────────────────────────────────────────
def merge_lines(lines: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return one (sku, quantity) line per SKU, adding up repeats, in first-seen order."""
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        merged[sku] = merged.get(sku, 0) + int(quantity)
    return list(merged.items())


def line_key(order_key: str, sku: str) -> str:
    """Return the business key of one line of an order's reservation."""
    return f"{order_key}:{sku}"


def _reserved(session: Session, order_key: str) -> list[StockMovement]:
    return list(
        session.scalars(
            select(StockMovement)
            .where(
                StockMovement.kind == "reserve", StockMovement.business_key.startswith(f"{order_key}:", autoescape=True)
            )
            .order_by(StockMovement.sku)
        )
    )


def reserve_order(
    session: Session, *, key: str, instance_id: str | None, lines: list[tuple[str, int]], location: str, actor: str
) -> dict[str, Any]:
    """Reserve every line at the location at once, exactly once per key; report shortages instead of going short."""
    done = _reserved(session, key)
    if done:
        return {"reserved": True, "location": location, "lines": _lines(done), "short": []}
    lines = merge_lines(lines)
    known = set(session.scalars(select(Variant.code).where(Variant.code.in_([s for s, _ in lines]))))
    if session.get(Location, location) is None:
        raise NotFound(f"no stock location {location}", location=location)
    short: list[dict[str, Any]] = []
    try:
        with session.begin_nested():
            # Balance rows are locked in SKU order, as settle_order does: two orders holding some of the
            # same SKUs in one transaction each (a wave's 审单) never wait on each other in a cycle.
            for sku, qty in sorted(lines):
                if sku not in known:
                    short.append({"sku": sku, "location": location, "wanted": qty, "available": 0})
                    raise _Short()
                move(
                    session,
                    kind="reserve",
                    sku=sku,
                    location=location,
                    quantity=qty,
                    business_key=line_key(key, sku),
                    actor=actor,
                    instance_id=instance_id,
                )
    except (_Short, StockShort):
        available = available_by_sku(session, [s for s, _ in lines], location=location)
        short = [
            {"sku": sku, "location": location, "wanted": qty, "available": available.get(sku, 0)}
            for sku, qty in lines
            if sku not in known or available.get(sku, 0) < qty
        ]
        return {"reserved": False, "location": location, "lines": [], "short": short}
    return {"reserved": True, "location": location, "lines": [{"sku": s, "quantity": q} for s, q in lines], "short": []}


def held_lines(session: Session, key: str) -> list[dict[str, Any]]:
    """Return the lines an order's reservation under this key still holds (reserved, not yet settled)."""
    settled = set(
        session.scalars(
            select(StockMovement.business_key).where(
                StockMovement.kind.in_(("release", "ship", "store_pickup")),
                StockMovement.business_key.startswith(f"{key}:", autoescape=True),
            )
        )
    )
    return _lines([m for m in _reserved(session, key) if m.business_key not in settled])


def reserved_lines(session: Session, key: str) -> list[dict[str, Any]]:
    """Return the lines ever reserved under an order's key, settled or not (empty: it never reserved)."""
    return _lines(_reserved(session, key))


def _lines(movements: list[StockMovement]) -> list[dict[str, Any]]:
    return [{"sku": m.sku, "quantity": m.quantity} for m in movements]


def settle_order(session: Session, *, key: str, kind: str, actor: str, instance_id: str | None) -> list[dict[str, Any]]:
    """Release, ship or hand over at the store every reserved line of an order, once; return what moved now.

    A line already settled another way (released, shipped or picked up) is left alone.
    """
    if kind not in ("release", "ship", "store_pickup"):
        raise ValueError(f"an order's reservation is settled by release, ship or store_pickup, not {kind}")
    moved = []
    for line in _reserved(session, key):
        settled = session.scalar(
            select(StockMovement.id).where(
                StockMovement.business_key == line.business_key,
                StockMovement.kind.in_(("release", "ship", "store_pickup")),
                StockMovement.kind != kind,
            )
        )
        if settled is not None:
            continue
        result = move(
            session,
            kind=kind,
            sku=line.sku,
            location=line.location,
            quantity=line.quantity,
            business_key=line.business_key,
            actor=actor,
            instance_id=instance_id,
        )
        if result.made:
            moved.append({"sku": line.sku, "location": line.location, "quantity": line.quantity})
    return moved
