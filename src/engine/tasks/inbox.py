"""The inbox query: the tasks a caller may see, filtered, sorted and paged by keyset cursor."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import Session, defer

from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sqltypes import UTCDateTime
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.inbox_ordered import (
    AT_RISK,
    PRIORITY,
    VIEWER,
    After,
    Cursor,
    OrderedSort,
    Viewer,
    page_in_order,
    split_cursor,
)
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

MAX_LIMIT = 200
# Tasks without a due time sort after every real one.
NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)

_due = func.coalesce(HumanTask.due_at, literal(NO_DUE, UTCDateTime()))
# 1 for a task forecast to miss its due time: a plain integer compares alike on every database.
_risk = case((HumanTask.at_risk.is_(True), 1), else_=0)
# Each sort: the (column, descending?) keys before the id tie-breaker.
SORTS: dict[str, tuple[tuple[Any, bool], ...]] = {
    "due": ((_due, False),),
    "-due": ((_due, True),),
    "priority": ((HumanTask.priority, True), (_due, False)),
    "at_risk": ((_risk, True), (_due, False)),
    "created": ((HumanTask.created_at, False),),
    "-created": ((HumanTask.created_at, True),),
}
# The sorts read in index order (engine/inbox_ordered.py); the others go through one sorted query.
ORDERED_SORTS = {
    "due": OrderedSort(),
    "-due": OrderedSort(descending=True),
    "priority": OrderedSort(lead=PRIORITY),
    "at_risk": OrderedSort(lead=AT_RISK),
}


@dataclass(frozen=True)
class InboxFilter:
    """What the caller asked to see."""

    state: str | None = None
    mine: bool = False
    role: str | None = None
    process: str | None = None
    overdue: bool = False
    # True: only tasks forecast to miss their due time; False: only the others; None: both.
    at_risk: bool | None = None
    sort: str = "due"
    cursor: str | None = None
    limit: int = 50


def _problem(field: str, rule: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, problems=[FieldProblem(field, rule, message)])


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str, keys: tuple[tuple[Any, bool], ...]) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != len(keys) + 1:
            raise ValueError
        decoded = []
        for (column, _), value in zip(keys, values, strict=False):
            is_time = column is _due or column is HumanTask.created_at
            decoded.append(_time_of(value) if is_time else _integer_of(value))
        decoded.append(str(values[-1]))
        return decoded
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
        raise _problem("cursor", "format", "cursor is not one this server issued for this sort") from None


def _time_of(value: Any) -> datetime:
    # A naive or unconvertible time would fail at bind time (a 500), not here (a 422).
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive time in cursor")
    return moment.astimezone(UTC)


def _integer_of(value: Any) -> int:
    # Beyond a 32-bit INTEGER column the database raises (a 500), not here (a 422).
    number = int(value)
    if not -(2**31) <= number < 2**31:
        raise ValueError("integer out of range in cursor")
    return number


def _after(keys: tuple[tuple[Any, bool], ...], values: list[Any]) -> ColumnElement[bool]:
    """Build the keyset condition "strictly after values" for mixed sort directions."""
    columns = [column for column, _ in keys] + [HumanTask.id]
    descending = [desc for _, desc in keys] + [False]
    clauses = []
    for i, (column, desc) in enumerate(zip(columns, descending, strict=True)):
        equal_before = [columns[j] == values[j] for j in range(i)]
        step = column < values[i] if desc else column > values[i]
        clauses.append(and_(*equal_before, step))
    return or_(*clauses)


# A list shows no step's context or output: those JSON documents load only if a caller reads them.
_AS_LISTED = (defer(HumanTask.context), defer(HumanTask.output))


def list_inbox(session: Session, *, principal: Principal, filters: InboxFilter) -> tuple[list[HumanTask], str | None]:
    """Return one page of visible tasks and the cursor of the next page (None at the end)."""
    if filters.sort not in SORTS:
        raise _problem("sort", "enum", f"sort must be one of {', '.join(SORTS)}")
    if not 1 <= filters.limit <= MAX_LIMIT:
        raise _problem("limit", "max", f"limit must be between 1 and {MAX_LIMIT}")
    if filters.state is not None and filters.state not in {s.value for s in TaskState}:
        raise _problem("state", "enum", f"state must be one of {', '.join(s.value for s in TaskState)}")
    keys = SORTS[filters.sort]
    cursor = _decode_cursor(filters.cursor, keys) if filters.cursor else None
    states = (filters.state,) if filters.state else tuple(sorted(ACTIVE_STATES))
    shape, params = _FilterShape.of(filters), _filter_params(principal, filters)
    rows = None
    if filters.sort in ORDERED_SORTS:
        after = None if cursor is None else _ordered_cursor(ORDERED_SORTS[filters.sort], cursor)
        after_shape, after_values = split_cursor(after)
        query = _ordered_query(filters.sort, states, Viewer.of(principal), shape, after_shape, filters.limit + 1)
        if query is not None:
            rows = list(session.scalars(query, params | after_values))
    if rows is None:
        query = select(HumanTask).options(*_AS_LISTED)
        query = query.where(access.tasks_visible_to(principal), HumanTask.state.in_(states), *_conditions(shape))
        if cursor is not None:
            query = query.where(_after(keys, cursor))
        order = [column.desc() if desc else column.asc() for column, desc in keys] + [HumanTask.id.asc()]
        rows = list(session.scalars(query.order_by(*order).limit(filters.limit + 1), params))
    page, more = rows[: filters.limit], len(rows) > filters.limit
    if not more:
        return page, None
    last = page[-1]
    values = [_sort_value(last, column) for column, _ in keys] + [last.id]
    return page, _encode_cursor(values)


@dataclass(frozen=True)
class _FilterShape:
    """Which of the caller's filters apply: the statement's shape. Their values are bind parameters."""

    mine: bool
    role: bool
    process: bool
    overdue: bool
    at_risk: bool | None

    @classmethod
    def of(cls, filters: InboxFilter) -> _FilterShape:
        return cls(
            mine=filters.mine,
            role=bool(filters.role),
            process=bool(filters.process),
            overdue=filters.overdue,
            at_risk=filters.at_risk,
        )


def _filter_params(principal: Principal, filters: InboxFilter) -> dict[str, Any]:
    """Return the values of _conditions' bind parameters."""
    return {VIEWER: principal.name, "role": filters.role, "process": filters.process, "now": utcnow()}


def _conditions(shape: _FilterShape) -> list[ColumnElement[bool]]:
    """Return the caller's filters as conditions (visibility and state are added by the query paths).

    Four-eyes is part of every path: nobody is offered a task they may not hold.
    """
    conditions = [access.tasks_not_excluded_for(bindparam(VIEWER, type_=String()))]
    if shape.mine:
        conditions.append(HumanTask.assignee == bindparam(VIEWER))
    if shape.role:
        conditions.append(HumanTask.role == bindparam("role"))
    if shape.process:
        conditions.append(HumanTask.process_key == bindparam("process"))
    if shape.overdue:
        conditions.append(and_(HumanTask.due_at < bindparam("now"), HumanTask.state.in_(sorted(ACTIVE_STATES))))
    if shape.at_risk is not None:
        conditions.append(_at_risk() if shape.at_risk else ~_at_risk())
    return conditions


# Built once per shape: composing the ordered page's statement cost as much as running it (profiled, issue 21 §7).
@lru_cache(maxsize=512)
def _ordered_query(
    sort: str, states: tuple[str, ...], viewer: Viewer, shape: _FilterShape, after: After | None, size: int
) -> Select[tuple[HumanTask]] | None:
    query = page_in_order(
        viewer=viewer,
        sort=ORDERED_SORTS[sort],
        states=states,
        conditions=_conditions(shape),
        after=after,
        size=size,
    )
    return None if query is None else query.options(*_AS_LISTED)


def _ordered_cursor(sort: OrderedSort, cursor: list[Any]) -> Cursor:
    """Return a decoded cursor as (lead value, due time or None for "no due time", id)."""
    lead, rest = (cursor[0], cursor[1:]) if sort.lead else (0, cursor)
    due, last_id = rest
    return lead, None if due == NO_DUE else due, last_id


def _at_risk() -> ColumnElement[bool]:
    # A forecast is about open work: an ended task is never at risk, whatever was stored last.
    return and_(HumanTask.at_risk.is_(True), HumanTask.state.in_(sorted(ACTIVE_STATES)))


def _sort_value(task: HumanTask, column: Any) -> Any:
    if column is _due:
        return task.due_at or NO_DUE
    if column is _risk:
        return int(task.at_risk)
    if column is HumanTask.created_at:
        return task.created_at
    return task.priority
