"""发货 by file: the courier's tracking-number file (CSV or XLSX) completes a wave's ship step in one go.

The file has the columns of the delivery upload ecomflow writes (wave_files.DELIVERY_UPLOADS): 订单编号 (JD's
订单号 is taken too), 物流公司, 运单号; other columns are ignored. Every row is checked before anything is
written: each fault is a problem naming its line and rule (required, max_length, unique, not_in_wave), and
a packed order the file leaves out is one as well (every_order_shipped). Only a file with no fault completes
the ship task, through the same complete_task as a typed form, in the caller's transaction: nothing half-applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Conflict, ValidationFailed
from ecomflow.engine.intake.files import open_table, refuse
from ecomflow.engine.intake.fulfilment import get_wave, orders_of
from ecomflow.engine.intake.waves import CANCELLED, PACKED, SHIPPED_OUTSIDE
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import complete_task
from ecomflow.engine.tasks.states import ACTIVE_STATES

SHIP_STEP = "ship"
# column → (the form's field, its max length); 订单号 is JD's name for 订单编号.
COLUMNS = {
    "订单编号": ("order_no", 64),
    "订单号": ("order_no", 64),
    "物流公司": ("carrier", 50),
    "运单号": ("tracking_no", 64),
}
REQUIRED = ("物流公司", "运单号")


def upload_link(wave_id: int) -> dict[str, str]:
    """Return the link the ship task shows for uploading the courier's file instead of typing the numbers."""
    return {
        "title": "运单号文件上传 (订单编号, 物流公司, 运单号)",
        "href": f"/waves/{wave_id}/shipments",
        "method": "POST",
    }


def read_shipments(path: Path, *, name: str) -> tuple[list[dict[str, Any]], list[FieldProblem], list[int]]:
    """Return the file's shipments, the problems of its rows, and each shipment's line; a wrong header refuses it."""
    shipments, problems, lines = [], [], []
    with open_table(path, name=name) as table:
        header = [cell.strip() for cell in table.header]
        number_column = next((c for c in ("订单编号", "订单号") if c in header), None)
        missing = [c for c in REQUIRED if c not in header] + ([] if number_column else ["订单编号"])
        if missing:
            raise refuse(name, "columns", f"the header lacks {', '.join(missing)} (it has {', '.join(header)})")
        where = {column: header.index(column) for column in (number_column, *REQUIRED)}
        first_line: dict[str, int] = {}
        for line, cells in table.rows:
            row: dict[str, Any] = {}
            for column, index in where.items():
                field, limit = COLUMNS[column]
                value = cells[index].strip() if index < len(cells) else ""
                if not value:
                    problems.append(_problem(line, column, "required", f"{column} is empty"))
                elif len(value) > limit:
                    problems.append(_problem(line, column, "max_length", f"{column} is longer than {limit}"))
                row[field] = value
            order_no = row["order_no"]
            if order_no and order_no in first_line:
                message = f"order {order_no} is also on line {first_line[order_no]}"
                problems.append(_problem(line, number_column, "unique", message))
            first_line.setdefault(order_no, line)
            shipments.append(row)
            lines.append(line)
    if not shipments and not problems:
        raise refuse(name, "empty", "the file has no rows")
    return shipments, problems, lines


def _problem(line: int, column: str, rule: str, message: str) -> FieldProblem:
    return FieldProblem(field=f"file line {line}: {column}", rule=rule, message=f"line {line}: {message}")


def check_against_wave(
    session: Session, wave_id: int, shipments: list[dict[str, Any]], lines: list[int]
) -> list[FieldProblem]:
    """Return what the file gets wrong about the wave: orders not packed in it, packed orders it leaves out."""
    packed = {order.order_no for order in orders_of(session, wave_id, PACKED)}
    gone = {order.order_no for order in orders_of(session, wave_id, CANCELLED, SHIPPED_OUTSIDE)}
    problems = [
        _problem(line, "订单编号", "not_in_wave", f"order {s['order_no']} is not packed in wave {wave_id}")
        for s, line in zip(shipments, lines, strict=True)
        if s["order_no"] and s["order_no"] not in packed and s["order_no"] not in gone
    ]
    named = {s["order_no"] for s in shipments}
    problems += [
        FieldProblem(field="file", rule="every_order_shipped", message=f"packed order {no} has no row in the file")
        for no in sorted(packed - named)
    ]
    return problems


def open_ship_task(session: Session, wave_id: int) -> HumanTask:
    """Return the wave's ship task still to be done, or refuse (Conflict) naming the wave."""
    wave = get_wave(session, wave_id)
    task = None
    if wave.instance_id is not None:
        task = session.scalar(
            select(HumanTask)
            .where(
                HumanTask.instance_id == wave.instance_id,
                HumanTask.step_key == SHIP_STEP,
                HumanTask.state.in_(ACTIVE_STATES),
            )
            .order_by(HumanTask.round.desc())
            .limit(1)
        )
    if task is None:
        raise Conflict(f"wave {wave_id} is not at its 发货 (ship) step", wave_id=wave_id)
    return task


def ship_by_file(session: Session, wave_id: int, path: Path, *, name: str, principal: Principal) -> HumanTask:
    """Complete the wave's ship step from a tracking-number file; any fault refuses all of it (ValidationFailed)."""
    task = open_ship_task(session, wave_id)
    shipments, problems, lines = read_shipments(path, name=name)
    problems += check_against_wave(session, wave_id, shipments, lines)
    if problems:
        raise ValidationFailed(f"{name}: {len(problems)} problem(s); nothing was applied", problems=problems)
    return complete_task(session, task_id=task.id, principal=principal, data={"shipments": shipments})
