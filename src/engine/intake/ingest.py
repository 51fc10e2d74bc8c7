"""Records into the platform tables: upserted on the platform's ids, unchanged when their digest is the same.

Every import path ends here (a file, an upload, the ERP feed). Each call works in batches: one SELECT of the
batch's existing ids, bulk INSERTs and UPDATEs, never a round trip per row. A created row, or one whose status
(review: rating) changed, is handed to waves/cases in the caller's transaction with what it was before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.platform_models import (
    AdDay,
    ImportRun,
    PlatformOrder,
    PlatformOrderEvent,
    PlatformOrderLine,
    PlatformRefund,
    PlatformReview,
    TrafficDay,
)
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.intake import cases, waves
from ecomflow.engine.intake.records import (
    AD_SOURCES,
    KINDS,
    ORDER_STATUSES,
    PLATFORMS,
    REFUND_KINDS,
    REFUND_STATUSES,
    AdRecord,
    OrderRecord,
    RefundRecord,
    ReviewRecord,
    TrafficRecord,
)

# Rows per SELECT/INSERT round: big enough to amortise the round trips, small enough for SQLite's variable limit.
BATCH = 1000
Record = OrderRecord | RefundRecord | ReviewRecord | TrafficRecord | AdRecord
_RECORD_OF = {
    "orders": OrderRecord,
    "refunds": RefundRecord,
    "reviews": ReviewRecord,
    "traffic": TrafficRecord,
    "ads": AdRecord,
}
# The tables a kind's import grows and then looks up by key (their planner statistics must keep up).
TABLES_OF = {
    "orders": ("platform_orders", "platform_order_lines", "platform_order_events"),
    "refunds": ("platform_refunds",),
    "reviews": ("platform_reviews",),
    "traffic": ("traffic_daily",),
    "ads": ("ad_daily",),
}
_CENT = Decimal("0.01")


def content_hash(record: Record) -> str:
    """Return the sha256 of the record's canonical JSON: equal data, equal digest, whatever the file's spelling."""
    return hashlib.sha256(json.dumps(_canonical(record), default=_scalar, ensure_ascii=False).encode()).hexdigest()


def _canonical(record: Any) -> list[Any]:
    # Field values in the dataclass's order (its __init__ sets them in that order), not asdict: its deep copies
    # cost more than the hashing.
    return [[_canonical(line) for line in v] if isinstance(v, tuple) else v for v in vars(record).values()]


def _scalar(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value.quantize(_CENT))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a record")


def apply(session: Session, kind: str, records: Iterable[Record], *, actor: str, run: ImportRun) -> None:
    """Upsert the records, count them on the run (created/updated/unchanged) and hand the changes on."""
    if kind not in KINDS:
        raise ValidationFailed(
            f"unknown import kind {kind!r}",
            problems=[FieldProblem(field="kind", rule="enum", message=f"one of {', '.join(KINDS)}")],
        )
    if run.id is None:
        # The events name the run: give it its id now.
        session.add(run)
        session.flush()
    upsert = {
        "orders": _upsert_orders,
        "refunds": _upsert_refunds,
        "reviews": _upsert_reviews,
        "traffic": _upsert_traffic,
        "ads": _upsert_ads,
    }[kind]
    for batch in _batches(records, kind):
        upsert(session, batch, actor=actor, run=run)
    session.flush()


def finish(session: Session, run: ImportRun, *, actor: str) -> None:
    """Close the run and write its one audit event with the counts (never one per row)."""
    run.finished_at = utcnow()
    counts = {name: getattr(run, name) or 0 for name in ("created", "updated", "unchanged", "rejected")}
    record_event(
        session,
        type="import.finished",
        actor=actor,
        data={"import_run": run.id, "kind": run.kind, "platform": run.platform, "source": run.source, **counts},
    )
    session.flush()


def _batches(records: Iterable[Record], kind: str) -> Iterator[list[Record]]:
    """Cut the records into batches; a key seen twice starts a new batch so the later row wins, in order."""
    batch: list[Record] = []
    keys: set[tuple[str, str]] = set()
    for position, record in enumerate(records, start=1):
        _check(record, kind, position)
        key = (record.platform, _key_of(record))
        if key in keys or len(batch) >= BATCH:
            yield batch
            batch, keys = [], set()
        batch.append(record)
        keys.add(key)
    if batch:
        yield batch


def _key_of(record: Record) -> str:
    if isinstance(record, OrderRecord):
        return record.order_no
    if isinstance(record, RefundRecord):
        return record.refund_no
    if isinstance(record, TrafficRecord | AdRecord):
        return record.row_key
    return record.review_id


def _check(record: Record, kind: str, position: int) -> None:
    """Refuse a record that no mapping could have produced: the wrong kind or a value outside the canon."""
    expected = _RECORD_OF[kind]
    canonical_order = type(record) is OrderRecord and kind == "orders" and record.platform in PLATFORMS
    if canonical_order and record.order_no and record.status in ORDER_STATUSES:
        return  # the common case, without building a list per record (profiled)
    problems = []
    if not isinstance(record, expected):
        problems.append(
            FieldProblem(field="records", rule="type", message=f"a {kind} import takes {expected.__name__}")
        )
    else:
        if record.platform not in PLATFORMS:
            problems.append(FieldProblem(field="platform", rule="enum", message=f"one of {', '.join(PLATFORMS)}"))
        if not _key_of(record):
            problems.append(FieldProblem(field=_key_field(kind), rule="required", message="the platform's id"))
        if isinstance(record, OrderRecord) and record.status not in ORDER_STATUSES:
            problems.append(FieldProblem(field="status", rule="enum", message=f"one of {', '.join(ORDER_STATUSES)}"))
        if isinstance(record, RefundRecord):
            if record.kind not in REFUND_KINDS:
                problems.append(FieldProblem(field="kind", rule="enum", message=f"one of {', '.join(REFUND_KINDS)}"))
            if record.status not in REFUND_STATUSES:
                problems.append(
                    FieldProblem(field="status", rule="enum", message=f"one of {', '.join(REFUND_STATUSES)}")
                )
        if isinstance(record, ReviewRecord) and not 1 <= record.rating <= 5:
            problems.append(FieldProblem(field="rating", rule="range", message="1 to 5"))
        if isinstance(record, AdRecord) and record.source not in AD_SOURCES:
            problems.append(FieldProblem(field="source", rule="enum", message=f"one of {', '.join(AD_SOURCES)}"))
    if problems:
        raise ValidationFailed(f"{kind} record {position} is invalid", problems=problems)


def _key_field(kind: str) -> str:
    return {"orders": "order_no", "refunds": "refund_no", "reviews": "review_id"}.get(kind, "row_key")


def _columns(record: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The record's fields as column values (a dataclass's fields, not asdict: lines stay records)."""
    values = dict(vars(record))
    for name in skip:
        del values[name]
    return values


def _bulk_insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany INSERT on the table (Core: the ORM's bulk insert went row by row here, profiled)."""
    if rows:
        session.execute(insert(model.__table__), rows)


def _bulk_update(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany UPDATE by primary key; each row carries its id as `row_id`."""
    if rows:
        table = model.__table__
        session.execute(update(table).where(table.c.id == bindparam("row_id")), rows)


def _load(session: Session, model: Any, key: Any, platform_keys: list[tuple[str, str]]) -> list[Any]:
    """The stored rows of these (platform, key) pairs as ORM objects, fresh from the database."""
    loaded = []
    for platform in {p for p, _ in platform_keys}:
        keys = [k for p, k in platform_keys if p == platform]
        query = select(model).where(model.platform == platform, key.in_(keys))
        loaded += list(session.scalars(query.execution_options(populate_existing=True)))
    return loaded


def _existing(session: Session, model: Any, key: Any, records: Sequence[Record], extra: Any) -> dict[tuple, Any]:
    """Return {(platform, key): (id, content_hash, extra)} of the batch's rows already stored: one SELECT."""
    found: dict[tuple, Any] = {}
    for platform in {r.platform for r in records}:
        keys = [_key_of(r) for r in records if r.platform == platform]
        query = select(key, model.id, model.content_hash, extra).where(model.platform == platform, key.in_(keys))
        for stored_key, row_id, digest, before in session.execute(query):
            found[(platform, stored_key)] = (row_id, digest, before)
    return found


def _count(run: ImportRun, *, created: int, updated: int, unchanged: int) -> None:
    run.created = (run.created or 0) + created
    run.updated = (run.updated or 0) + updated
    run.unchanged = (run.unchanged or 0) + unchanged


def _upsert_orders(session: Session, records: list[OrderRecord], *, actor: str, run: ImportRun) -> None:
    stored = _existing(session, PlatformOrder, PlatformOrder.order_no, records, PlatformOrder.status)
    now = utcnow()
    new: list[tuple[OrderRecord, str]] = []
    changed: list[tuple[int, OrderRecord, str, str]] = []
    unchanged = 0
    for record in records:
        digest = content_hash(record)
        row = stored.get((record.platform, record.order_no))
        if row is None:
            new.append((record, digest))
        elif row[1] == digest:
            unchanged += 1
        else:
            changed.append((row[0], record, digest, row[2]))
    _bulk_insert(
        session,
        PlatformOrder,
        [{**_columns(r, skip=("lines",)), "content_hash": d, "imported_at": now, "updated_at": now} for r, d in new],
    )
    created_orders = _load(session, PlatformOrder, PlatformOrder.order_no, [(r.platform, r.order_no) for r, _ in new])
    _bulk_update(
        session,
        PlatformOrder,
        [{"row_id": i, **_columns(r, skip=("lines",)), "content_hash": d, "updated_at": now} for i, r, d, _ in changed],
    )
    if changed:
        session.execute(delete(PlatformOrderLine).where(PlatformOrderLine.order_id.in_([c[0] for c in changed])))
    by_key = {(o.platform, o.order_no): o.id for o in created_orders}
    lines = [(by_key[(r.platform, r.order_no)], r) for r, _ in new] + [(i, r) for i, r, _, _ in changed]
    line_rows = [
        {"order_id": order_id, "line_no": number, **_columns(line)}
        for order_id, record in lines
        for number, line in enumerate(record.lines, start=1)
    ]
    _bulk_insert(session, PlatformOrderLine, line_rows)
    events = [
        _order_event(o.id, "order.imported", actor, now, run, status=o.status, platform_status=o.platform_status)
        for o in created_orders
    ]
    moved = [(i, r, before) for i, r, _, before in changed if r.status != before]
    events += [
        _order_event(
            i, "order.status_changed", actor, now, run, **{"from": b, "to": r.status}, platform_status=r.platform_status
        )
        for i, r, b in moved
    ]
    _bulk_insert(session, PlatformOrderEvent, events)
    waves.orders_created(session, created_orders, actor=actor)
    if moved:
        before_of = {i: b for i, _, b in moved}
        query = (
            select(PlatformOrder).where(PlatformOrder.id.in_(list(before_of))).execution_options(populate_existing=True)
        )
        for order in session.scalars(query):
            waves.order_changed(session, order, before=before_of[order.id], actor=actor)
    _count(run, created=len(new), updated=len(changed), unchanged=unchanged)


def _order_event(order_id: int, type: str, actor: str, at: datetime, run: ImportRun, **data: Any) -> dict[str, Any]:
    return {"order_id": order_id, "type": type, "actor": actor, "at": at, "data": {**data, "import_run": run.id}}


def _upsert_refunds(session: Session, records: list[RefundRecord], *, actor: str, run: ImportRun) -> None:
    _upsert_simple(
        session,
        records,
        PlatformRefund,
        PlatformRefund.refund_no,
        "refund_no",
        "status",
        cases.refund_changed,
        actor,
        run,
    )


def _upsert_reviews(session: Session, records: list[ReviewRecord], *, actor: str, run: ImportRun) -> None:
    _upsert_simple(
        session,
        records,
        PlatformReview,
        PlatformReview.review_id,
        "review_id",
        "rating",
        cases.review_changed,
        actor,
        run,
    )


def _upsert_simple(
    session: Session,
    records: Sequence[RefundRecord | ReviewRecord],
    model: Any,
    key: Any,
    key_name: str,
    watched: str,
    changed_hook: Any,
    actor: str,
    run: ImportRun,
) -> None:
    """Refunds and reviews alike: insert the new, update the different, hand on the new and the moved."""
    stored = _existing(session, model, key, records, getattr(model, watched))
    now = utcnow()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    before_of: dict[int, Any] = {}
    unchanged = 0
    for record in records:
        digest = content_hash(record)
        row = stored.get((record.platform, getattr(record, key_name)))
        if row is None:
            new.append({**_columns(record), "content_hash": digest, "imported_at": now, "updated_at": now})
        elif row[1] == digest:
            unchanged += 1
        else:
            changed.append({"row_id": row[0], **_columns(record), "content_hash": digest, "updated_at": now})
            if getattr(record, watched) != row[2]:
                before_of[row[0]] = row[2]
    _bulk_insert(session, model, new)
    created = _load(session, model, key, [(r["platform"], r[key_name]) for r in new])
    _bulk_update(session, model, changed)
    for item in created:
        changed_hook(session, item, before=None, actor=actor)
    if before_of:
        query = select(model).where(model.id.in_(list(before_of))).execution_options(populate_existing=True)
        for item in session.scalars(query):
            changed_hook(session, item, before=before_of[item.id], actor=actor)
    _count(run, created=len(new), updated=len(changed), unchanged=unchanged)


def _upsert_traffic(session: Session, records: list[TrafficRecord], *, actor: str, run: ImportRun) -> None:
    _upsert_figures(session, records, TrafficDay, run=run)


def _upsert_ads(session: Session, records: list[AdRecord], *, actor: str, run: ImportRun) -> None:
    _upsert_figures(session, records, AdDay, run=run)


def _upsert_figures(
    session: Session, records: Sequence[TrafficRecord | AdRecord], model: Any, *, run: ImportRun
) -> None:
    """Traffic and ad days: insert the new, update the corrected; they start nothing, so nothing is handed on."""
    stored = _existing(session, model, model.row_key, records, model.updated_at)
    now = utcnow()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    unchanged = 0
    for record in records:
        digest = content_hash(record)
        row = stored.get((record.platform, record.row_key))
        if row is None:
            new.append({**_columns(record), "content_hash": digest, "imported_at": now, "updated_at": now})
        elif row[1] == digest:
            unchanged += 1
        else:
            changed.append({"row_id": row[0], **_columns(record), "content_hash": digest, "updated_at": now})
    _bulk_insert(session, model, new)
    _bulk_update(session, model, changed)
    _count(run, created=len(new), updated=len(changed), unchanged=unchanged)
