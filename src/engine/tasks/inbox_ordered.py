"""The inbox's sorts read in index order (due, -due, priority, at_risk): a page costs the same at 100 or 100,000 tasks.

One sorted query over "my roles OR escalated to my roles OR assigned to me" makes the database
read and sort every visible active task for each page (bench/RESULTS.md: p95 0.7 s by due and
141 ms by priority at 100k open). Here each visibility branch, active state and due phase (dated or
undated) is its own equality lookup on an index ending in (lead,) due_at, read in order with a
LIMIT; the reads go as one UNION statement that merges the few rows and loads the page. A lead
column (priority, at_risk) sorts descending before the due time; tasks without a due time come
after the dated ones of the same lead. That is the general query's order, and the cursors are
the same. The statement is built once per shape (sort, states, viewer's roles, filters, the cursor's
lead and phase): the user, the cursor's due time and id and the filters' values are bind parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, cast, false, literal, or_, select, true, union

from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.states import ACTIVE_STATES

# A cursor: the last row's (lead value, due time or None, id).
Cursor = tuple[int, datetime | None, str]
# A cursor's shape: its lead value and whether it has a due time; its due time and id are the parameters
# after_due and after_id.
After = tuple[int, bool]
# The bind parameter of the viewer's user name.
VIEWER = "viewer"


@dataclass(frozen=True)
class Viewer:
    """Who reads, as far as the statement's shape goes: a manager sees all, others their roles' branches."""

    manager: bool
    roles: tuple[str, ...]

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        manager = access.is_manager(principal)
        return cls(manager=manager, roles=() if manager else tuple(sorted(principal.roles)))


def split_cursor(after: Cursor | None) -> tuple[After | None, dict[str, Any]]:
    """Return a cursor's shape (for building the statement) and its bind parameters (for running it)."""
    if after is None:
        return None, {}
    lead, due, last_id = after
    return (lead, due is not None), {"after_due": due, "after_id": last_id}


@dataclass(frozen=True)
class Lead:
    """A column sorted descending before the due time, with its "equal to" and "below" conditions.

    `computed` sorts the same but matches no index. The reads that go through another index
    order and compare with it: the escalated_to branch (its equality index) and
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
    *,
    viewer: Viewer,
    sort: OrderedSort,
    states: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    after: After | None,
    size: int,
) -> Select[tuple[HumanTask]] | None:
    """Return the query of the next `size` visible tasks in the sort's order, or None when this path does not apply.

    Its parameters: VIEWER, and split_cursor's with a cursor.
    """
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
        for branch, lead_indexed in _visibility_branches(viewer, phase)
        for part in _parts(sort.lead, phase, after, lead_indexed=lead_indexed)
    ]
    if not reads:
        return select(HumanTask).where(false())
    # One statement: every read keeps its own index order and LIMIT; UNION drops a task seen by two branches,
    # the few rows are merged in the sort's order and the page's tasks loaded in the same round trip.
    candidates = union(*(select(read.subquery()) for read in reads)).subquery("candidates")
    page = select(candidates).order_by(*_merged_order(candidates.c, sort)).limit(size).subquery("page")
    return select(HumanTask).join(page, page.c.id == HumanTask.id).order_by(*_merged_order(page.c, sort))


def _merged_order(rows: Any, sort: OrderedSort) -> list[Any]:
    """Return the general query's order over (lead, due_at, id) rows: lead descending, then each phase in turn."""
    lead = [rows.lead.desc()] if sort.lead else []
    # Ascending, dated tasks come first; descending, the undated ones (they sort as "due never").
    undated = rows.due_at.is_(None)
    phase = undated.desc() if sort.descending else undated.asc()
    due = rows.due_at.desc() if sort.descending else rows.due_at.asc()
    return [*lead, phase, due, rows.id.asc()]


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


def _parts(
    lead: Lead | None, phase: _Phase, after: After | None, *, lead_indexed: bool
) -> list[list[ColumnElement[bool]]]:
    """Return the conditions of each ordered read of a phase that lie strictly after the cursor.

    With a lead, "after" is two index ranges read apart: the cursor's lead value beyond its due
    time, and every lower lead value (one OR would stop the index from bounding the scan).
    """
    if after is None:
        return [[]]
    lead_value, dated = after
    same_lead = [] if phase.before_cursor(dated=dated) else [[phase.keyset(dated=dated)]]
    if lead is None:
        return same_lead
    equal, below = lead.conditions(lead_value, indexed=lead_indexed)
    return [[equal, *part] for part in same_lead] + [[below]]


def _visibility_branches(viewer: Viewer, phase: _Phase) -> list[tuple[ColumnElement[bool], bool]]:
    """One equality condition per index, and whether a lead index serves it in this phase (models.py).

    Managers see all; others their roles, escalations and own tasks. Only dated tasks are read
    along a lead index; the undated ones come from a due index (due_at IS NULL).
    """
    if viewer.manager:
        return [(true(), phase.dated)]
    return [
        *((HumanTask.role == role, phase.dated) for role in viewer.roles),
        *((HumanTask.escalated_to == role, False) for role in viewer.roles),
        (HumanTask.assignee == bindparam(VIEWER), phase.dated),
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

    def before_cursor(self, *, dated: bool) -> bool:
        """Return whether a cursor with (or without) a due time is already past this whole phase."""
        if self.dated == dated:
            return False
        # Ascending: dated come first, so an undated cursor is past them; descending the other way round.
        return self.dated != self.descending

    def keyset(self, *, dated: bool) -> ColumnElement[bool]:
        """Return "strictly after the cursor" within this phase (everything when the cursor is in the other one)."""
        if dated != self.dated:
            return true()
        last_id = bindparam("after_id")
        if not self.dated:
            return HumanTask.id > last_id
        due = bindparam("after_due")
        beyond = HumanTask.due_at < due if self.descending else HumanTask.due_at > due
        # The bound alone is what an index range can start from: behind the OR, PostgreSQL merged bitmaps and sorted.
        bound = HumanTask.due_at <= due if self.descending else HumanTask.due_at >= due
        return and_(bound, or_(beyond, and_(HumanTask.due_at == due, HumanTask.id > last_id)))
