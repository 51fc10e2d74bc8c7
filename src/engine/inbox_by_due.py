"""The inbox's default sort (by due time) read in index order, so a page costs the same at 100 tasks or 100,000.

One sorted query over "my roles OR escalated to my roles OR assigned to me" makes the database
read and sort every visible active task for each page (bench/RESULTS.md: p95 0.7 s at 100k open).
Here each visibility branch and each active state is its own equality lookup on an index ending
in due_at, read in order with a LIMIT, and the few rows merged in Python. Tasks without a due
time come after all others (the same order and cursors as the general query).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from engine.models import HumanTask
from engine.principals import Principal
from engine.task_states import ACTIVE_STATES

Row = tuple[datetime | None, str]


def page_by_due(
    session: Session,
    *,
    principal: Principal,
    states: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    after: tuple[datetime | None, str] | None,
    size: int,
    descending: bool,
) -> list[str] | None:
    """Return the ids of the next `size` visible tasks by due time, or None when this path does not apply."""
    if not set(states) <= ACTIVE_STATES:
        return None  # ended tasks are few per query but many in total: the general query serves them
    branches = _visibility_branches(principal)
    dated_phase = _Phase(dated=True, descending=descending)
    undated_phase = _Phase(dated=False, descending=descending)
    phases = [undated_phase, dated_phase] if descending else [dated_phase, undated_phase]
    found: list[Row] = []
    for phase in phases:
        if after is not None and phase.before_cursor(after):
            continue
        keyset = phase.keyset(after)
        rows: dict[str, Row] = {}
        for state in states:
            for branch in branches:
                query = (
                    select(HumanTask.due_at, HumanTask.id)
                    .where(HumanTask.state == state, branch, phase.condition(), *conditions, *keyset)
                    .order_by(*phase.order())
                    .limit(size - len(found))
                )
                rows.update({row_id: (due, row_id) for due, row_id in session.execute(query)})
        found.extend(sorted(rows.values(), key=phase.sort_key)[: size - len(found)])
        if len(found) >= size:
            break
    return [row_id for _, row_id in found]


def _visibility_branches(principal: Principal) -> list[ColumnElement[bool]]:
    """One equality condition per index: managers see all; others their roles, escalations and own tasks."""
    if principal.is_manager:
        return [true()]
    roles = sorted(principal.roles)
    return [
        *(HumanTask.role == role for role in roles),
        *(HumanTask.escalated_to == role for role in roles),
        HumanTask.assignee == principal.name,
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

    @property
    def sort_key(self) -> Callable[[Row], Any]:
        if not self.dated:
            return lambda row: row[1]
        if self.descending:
            return lambda row: (-row[0].timestamp(), row[1])
        return lambda row: (row[0], row[1])

    def before_cursor(self, after: tuple[datetime | None, str]) -> bool:
        """Return whether the cursor is already past this whole phase."""
        cursor_dated = after[0] is not None
        if self.dated == cursor_dated:
            return False
        # Ascending: dated come first, so an undated cursor is past them; descending the other way round.
        return self.dated != self.descending

    def keyset(self, after: tuple[datetime | None, str] | None) -> list[ColumnElement[bool]]:
        """Return "strictly after the cursor" within this phase (nothing when the cursor is in the other one)."""
        if after is None or (after[0] is not None) != self.dated:
            return []
        due, last_id = after
        if not self.dated:
            return [HumanTask.id > last_id]
        beyond = HumanTask.due_at < due if self.descending else HumanTask.due_at > due
        return [or_(beyond, and_(HumanTask.due_at == due, HumanTask.id > last_id))]
