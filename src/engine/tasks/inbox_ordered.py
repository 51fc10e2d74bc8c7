"""The inbox's sorts read in index order (due, -due, priority, at_risk): a page costs the same at 100 or 100,000 tasks.

One sorted query over "my roles OR escalated to my roles OR assigned to me" makes the database
read and sort every visible active task for each page (bench/RESULTS.md: p95 0.7 s by due and
141 ms by priority at 100k open). Here each visibility branch, active state and due phase (dated or
undated) is its own equality lookup on an index ending in (lead,) due_at, read in order with a
LIMIT; the reads go as one UNION ALL statement and the few rows are merged in Python. A lead
column (priority, at_risk) sorts descending before the due time; tasks without a due time come
after the dated ones of the same lead. That is the general query's order, and the cursors are
the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, cast, false, literal, or_, select, true, union_all
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.states import ACTIVE_STATES

# A row as read: (lead value, due time, id); the lead is 0 when the sort has none.
Row = tuple[int, datetime | None, str]
# A cursor: the last row's (lead value, due time or None, id).
Cursor = tuple[int, datetime | None, str]


@dataclass(frozen=True)
class Lead:
    """A column sorted descending before the due time, with its "equal to" and "below" conditions.

    `computed` sorts the same but matches no index. The reads that go through another index
    order and compare with it: the assignee and escalated_to branches (their equality index) and
    the undated phase (due_at IS NULL on a due index). Otherwise the planner walks the whole
    state's lead index, filtering: SQLite took 350 ms for a staff inbox with no escalated tasks,
    310 ms for a later page, and 14 ms for a manager's first page with few undated tasks.
    """

    column: Any
    computed: Any
    equal: Callable[[int], ColumnElement[bool]]
    below: Callable[[int], ColumnElement[bool]]

    def order(self, *, indexed: bool) -> Any:
        return (self.column if indexed else self.computed).desc()

    def conditions(self, value: int, *, indexed: bool) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        """Return ("lead equals value", "lead below value")."""
        if indexed:
            return self.equal(value), self.below(value)
        return self.computed == value, self.computed < value


PRIORITY = Lead(
    HumanTask.priority,
    HumanTask.priority + 0,
    lambda value: HumanTask.priority == value,
    lambda value: HumanTask.priority < value,
)
# at_risk is a boolean column; its sort value is 1 (at risk) or 0, as in the general query.
AT_RISK = Lead(
    HumanTask.at_risk,
    cast(HumanTask.at_risk, Integer),
    lambda value: HumanTask.at_risk == bool(value),
    lambda value: HumanTask.at_risk == False if value else false(),  # noqa: E712 (SQL, not Python, comparison)
)


@dataclass(frozen=True)
class OrderedSort:
    """(lead descending,) due time ascending or descending, then id."""

    lead: Lead | None = None
    descending: bool = False


def page_in_order(
    session: Session,
    *,
    principal: Principal,
    sort: OrderedSort,
    states: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    after: Cursor | None,
    size: int,
) -> list[str] | None:
    """Return the ids of the next `size` visible tasks in the sort's order, or None when this path does not apply."""
    if not set(states) <= ACTIVE_STATES:
        return None  # ended tasks are few per query but many in total: the general query serves them
    phases = [_Phase(dated=True, descending=sort.descending), _Phase(dated=False, descending=sort.descending)]
    reads = [
        _ordered_read(
            sort,
            state=state,
            branch=branch,
            lead_indexed=lead_indexed,
            phase=phase,
            conditions=[*conditions, *part],
            size=size,
        )
        for phase in phases
        for state in states
        for branch, lead_indexed in _visibility_branches(principal, phase)
        for part in _parts(sort.lead, phase, after, lead_indexed=lead_indexed)
    ]
    if not reads:
        return []
    # One statement: every read keeps its own index order and LIMIT, in one round trip instead of a dozen.
    reads_at_once = union_all(*(select(read.subquery()) for read in reads))
    rows = {row_id: (int(lead), due, row_id) for lead, due, row_id in session.execute(reads_at_once)}
    ranked = sorted(rows.values(), key=lambda row: (-row[0], *_phase_of(phases, row).sort_key(row)))
    return [row_id for _, _, row_id in ranked[:size]]


def _ordered_read(
    sort: OrderedSort,
    *,
    state: str,
    branch: ColumnElement[bool],
    lead_indexed: bool,
    phase: _Phase,
    conditions: list[ColumnElement[bool]],
    size: int,
) -> Select:
    """Return the first `size` rows of one branch, state and phase in the sort's order, read along an index."""
    lead = sort.lead.column if sort.lead else literal(0)
    lead_order = [sort.lead.order(indexed=lead_indexed)] if sort.lead else []
    return (
        select(lead.label("lead"), HumanTask.due_at, HumanTask.id)
        .where(HumanTask.state == state, branch, phase.condition(), *conditions)
        .order_by(*lead_order, *phase.order())
        .limit(size)
    )


def _phase_of(phases: list[_Phase], row: Row) -> _Phase:
    return phases[0] if row[1] is not None else phases[1]


def _parts(
    lead: Lead | None, phase: _Phase, after: Cursor | None, *, lead_indexed: bool
) -> list[list[ColumnElement[bool]]]:
    """Return the conditions of each ordered read of a phase that lie strictly after the cursor.

    With a lead, "after" is two index ranges read apart: the cursor's lead value beyond its due
    time, and every lower lead value (one OR would stop the index from bounding the scan).
    """
    if after is None:
        return [[]]
    lead_value, due, last_id = after
    same_lead = [] if phase.before_cursor(due) else [[phase.keyset(due, last_id)]]
    if lead is None:
        return same_lead
    equal, below = lead.conditions(lead_value, indexed=lead_indexed)
    return [[equal, *part] for part in same_lead] + [[below]]


def _visibility_branches(principal: Principal, phase: _Phase) -> list[tuple[ColumnElement[bool], bool]]:
    """One equality condition per index, and whether a lead index serves it in this phase (models.py).

    Managers see all; others their roles, escalations and own tasks. Only dated tasks are read
    along a lead index; the undated ones come from a due index (due_at IS NULL).
    """
    if access.is_manager(principal):
        return [(true(), phase.dated)]
    roles = sorted(principal.roles)
    return [
        *((HumanTask.role == role, phase.dated) for role in roles),
        *((HumanTask.escalated_to == role, False) for role in roles),
        (HumanTask.assignee == principal.name, False),
    ]


class _Phase:
    """The dated tasks (ordered by due time, then id) or the undated ones (by id)."""

    def __init__(self, *, dated: bool, descending: bool) -> None:
        self.dated = dated
        self.descending = descending

    def condition(self) -> ColumnElement[bool]:
        return HumanTask.due_at.is_not(None) if self.dated else HumanTask.due_at.is_(None)

    def order(self) -> list[Any]:
        if not self.dated:
            return [HumanTask.id.asc()]
        return [HumanTask.due_at.desc() if self.descending else HumanTask.due_at.asc(), HumanTask.id.asc()]

    def sort_key(self, row: Row) -> tuple[Any, ...]:
        """Return the key of a row within one lead value: the phase's rank, then its own order."""
        _, due, row_id = row
        # Ascending, dated tasks come first; descending, the undated ones (they sort as "due never").
        rank = 0 if self.dated != self.descending else 1
        if not self.dated:
            return (rank, 0.0, row_id)
        return (rank, -due.timestamp() if self.descending else due.timestamp(), row_id)

    def before_cursor(self, due: datetime | None) -> bool:
        """Return whether a cursor at this due time (None: undated) is already past this whole phase."""
        cursor_dated = due is not None
        if self.dated == cursor_dated:
            return False
        # Ascending: dated come first, so an undated cursor is past them; descending the other way round.
        return self.dated != self.descending

    def keyset(self, due: datetime | None, last_id: str) -> ColumnElement[bool]:
        """Return "strictly after the cursor" within this phase (everything when the cursor is in the other one)."""
        if (due is not None) != self.dated:
            return true()
        if not self.dated:
            return HumanTask.id > last_id
        beyond = HumanTask.due_at < due if self.descending else HumanTask.due_at > due
        return or_(beyond, and_(HumanTask.due_at == due, HumanTask.id > last_id))
