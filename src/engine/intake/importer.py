"""Import an export file: check every row first, then write in batches, and report.

The check pass reads the whole file (and the 宝贝报表 beside a Tmall 订单报表) into records on disk, refusing the
file outright for a whole-file fault; nothing is written before it ends. The writes then go in batches of
ingest.BATCH records, each batch one transaction, all-or-nothing. A crash between batches leaves the earlier
batches written and the run unfinished: importing the same file again repairs it, since the import is
idempotent on the platform's ids (what was written counts as unchanged, the rest is created).
On SQLite (one writer at a time) the import pauses between batches so that the writers waiting meanwhile
(a wave's flow, a completion over the API) get in before its next batch: see let_writers_in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.db.planner_stats import GrowthAnalyzer
from ecomflow.engine.db.platform_models import ImportRun
from ecomflow.engine.db.sessions import get_engine, session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import NotFound, ValidationFailed
from ecomflow.engine.events.outbox import START_RUN
from ecomflow.engine.intake import ingest
from ecomflow.engine.intake.files import open_table
from ecomflow.engine.intake.mapping import Mapping
from ecomflow.engine.intake.records import AD_SOURCES
from ecomflow.engine.intake.rows import (
    RowReader,
    RowRejected,
    ad_of,
    line_of,
    order_of,
    refund_of,
    review_of,
    traffic_of,
)
from ecomflow.engine.intake.staging import Staging

Progress = Callable[[int, int], None]
# SQLite's busy handler retries a waiting writer every 100 ms once it has waited a while (its delays go 1, 2,
# 5 … 100 ms): a pause longer than that lets every waiting writer take the lock before the next batch does.
# Without it a back-to-back batch took the lock again within a millisecond and the waves' flows timed out.
SQLITE_WRITER_PAUSE_S = 0.12
_RECORD_OF = {"refunds": refund_of, "reviews": review_of, "traffic": traffic_of}
_KEY_OF = {"orders": "order_no", "refunds": "refund_no", "reviews": "review_id", "traffic": "row_key", "ads": "row_key"}
# What a traffic or ad row's key is made of, for the message about a repeated row.
_KEY_PARTS = {"traffic": "day|store|item", "ads": "channel|day|store|plan|creative"}


@dataclass
class Checked:
    """A checked export: its records staged on disk, its rejections [{file, line, reason}]."""

    kind: str
    platform: str
    staging: Staging
    rejections: list[dict[str, Any]] = field(default_factory=list)
    # Order numbers of rejected order rows: their lines in a 宝贝报表 go with them, unreported.
    rejected_orders: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.staging.count()

    def reject(self, file: str, line: int, reason: str) -> None:
        self.rejections.append({"file": file, "line": line, "reason": reason})


def check(
    kind: str,
    path: Path,
    mapping: Mapping,
    *,
    lines_path: Path | None = None,
    name: str | None = None,
    lines_name: str | None = None,
    ad_source: str | None = None,
) -> Checked:
    """Read every row into a staged record or a rejection; a whole-file fault raises ValidationFailed.

    An ad report (kind ads) needs `ad_source`, ztc (直通车) or zz (钻展): the file does not say which it is."""
    section = mapping.section(kind)
    if (kind == "ads") != (ad_source is not None) or (ad_source is not None and ad_source not in AD_SOURCES):
        rule = f"one of {', '.join(AD_SOURCES)} for an ad report" if kind == "ads" else "only for an ad report"
        raise ValidationFailed(
            f"source {ad_source!r}: {rule}", problems=[FieldProblem(field="source", rule="enum", message=rule)]
        )
    checked = Checked(kind=kind, platform=mapping.platform, staging=Staging())
    try:
        name = name or path.name
        if kind == "orders":
            _check_orders(checked, path, mapping, name)
            if lines_path is not None:
                _check_lines(checked, lines_path, mapping, lines_name or lines_path.name, name)
        else:
            _check_rows(checked, path, mapping, name, section.kind, ad_source)
    except BaseException:
        checked.staging.close()
        raise
    return checked


def _check_rows(checked: Checked, path: Path, mapping: Mapping, name: str, kind: str, ad_source: str | None) -> None:
    record_of = partial(ad_of, source=ad_source) if kind == "ads" else _RECORD_OF[kind]
    with open_table(path, name=name) as table:
        reader = RowReader(table.header, mapping.section(kind), mapping, name=name)
        for line, cells in table.rows:
            try:
                record = record_of(reader, reader.values(cells), mapping.platform)
            except RowRejected as exc:
                checked.reject(name, line, str(exc))
                continue
            _stage(checked, name, line, getattr(record, _KEY_OF[kind]), record)


def _stage(checked: Checked, name: str, line: int, key: str, record: Any) -> None:
    first = checked.staging.add(key, line, record)
    if first is not None:
        what = f"{_KEY_PARTS[checked.kind]} {key}" if checked.kind in _KEY_PARTS else f"{_KEY_OF[checked.kind]} {key}"
        checked.reject(name, line, f"{what} is also on line {first}")


def _check_orders(checked: Checked, path: Path, mapping: Mapping, name: str) -> None:
    section = mapping.section("orders")
    spoilt: dict[str, int] = {}
    with open_table(path, name=name) as table:
        reader = RowReader(table.header, section, mapping, name=name)
        for line, cells in table.rows:
            values = reader.values(cells)
            try:
                order = order_of(reader, values, mapping.platform)
                line_record = line_of(reader, values) if section.lines_in_rows else None
            except RowRejected as exc:
                checked.reject(name, line, str(exc))
                if values.get("order_no"):
                    checked.rejected_orders.add(values["order_no"])
                    if section.lines_in_rows:
                        spoilt.setdefault(values["order_no"], line)
                continue
            if line_record is None:
                _stage(checked, name, line, order.order_no, order)
                continue
            # One row per line (JD): the first row gives the order, every row a line.
            checked.staging.add(order.order_no, line, order)  # a later row of the same order adds only its line
            checked.staging.add_line(order.order_no, line, line_record)
    _drop_spoilt(checked, spoilt, name, name)


def _check_lines(checked: Checked, path: Path, mapping: Mapping, name: str, order_file: str) -> None:
    """The 宝贝报表: each line joins its order by 订单编号; an order with a bad line is rejected whole."""
    spoilt: dict[str, int] = {}
    with open_table(path, name=name) as table:
        reader = RowReader(table.header, mapping.section("order_lines"), mapping, name=name)
        for line, cells in table.rows:
            values = reader.values(cells)
            try:
                reader.require(values)
                record = line_of(reader, values)
            except RowRejected as exc:
                checked.reject(name, line, str(exc))
                if values.get("order_no"):
                    spoilt.setdefault(values["order_no"], line)
                continue
            checked.staging.add_line(values["order_no"], line, record)
    for line, order_no in checked.staging.orphan_lines():
        if order_no not in spoilt and order_no not in checked.rejected_orders:
            checked.reject(name, line, f"order {order_no} is not in the order report")
    _drop_spoilt(checked, spoilt, order_file, name)


def _drop_spoilt(checked: Checked, spoilt: dict[str, int], order_file: str, bad_file: str) -> None:
    """An order one of whose lines was rejected is rejected whole: never an order with lines missing."""
    for order_no, bad_line in spoilt.items():
        line = checked.staging.drop(order_no)
        if line is not None:
            checked.reject(order_file, line, f"order {order_no}: its line on {bad_file} line {bad_line} was rejected")


def write(
    checked: Checked, *, actor: str, source: str, progress: Progress | None = None, url: str | None = None
) -> str:
    """Write the staged records in batches (one transaction each) and finish the run; return its id."""
    with session_scope(url) as session:
        run = ImportRun(kind=checked.kind, platform=checked.platform, source=source, actor=actor)
        session.add(run)
        session.flush()
        run_id = run.id
    total, done = checked.total, 0
    analyzer = GrowthAnalyzer(ingest.TABLES_OF[checked.kind], first=ingest.BATCH)
    for batch in checked.staging.batches(ingest.BATCH, with_lines=checked.kind == "orders"):
        with session_scope(url) as session:
            run = session.get(ImportRun, run_id)
            ingest.apply(session, checked.kind, batch, actor=actor, run=run)
            analyzer.written(session, run.created or 0)
        let_writers_in(url)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    with session_scope(url) as session:
        run = session.get(ImportRun, run_id)
        run.rejections = checked.rejections
        run.rejected = len(checked.rejections)
        ingest.finish(session, run, actor=actor)
    return run_id


def let_writers_in(url: str | None = None) -> None:
    """After a batch's commit, give SQLite's waiting writers their turn; PostgreSQL locks rows, not the file."""
    if get_engine(url).dialect.name == "sqlite":
        time.sleep(SQLITE_WRITER_PAUSE_S)


def import_file(
    kind: str,
    path: Path,
    mapping: Mapping,
    *,
    actor: str,
    lines_path: Path | None = None,
    source: str | None = None,
    lines_source: str | None = None,
    ad_source: str | None = None,
    progress: Progress | None = None,
    url: str | None = None,
) -> str:
    """Check, then write; return the ImportRun's id. A refused file raises ValidationFailed, nothing written.

    `source` and `lines_source` are the files' names as uploaded (the paths may be temp files)."""
    checked = check(
        kind, path, mapping, lines_path=lines_path, name=source, lines_name=lines_source, ad_source=ad_source
    )
    try:
        return write(checked, actor=actor, source=f"file:{source or path.name}", progress=progress, url=url)
    finally:
        checked.staging.close()


def queued_starts(session: Session) -> int:
    """How many process starts wait in the orchestrator's queue (START_RUN outbox messages not yet delivered)."""
    query = select(func.count()).where(
        OutboxMessage.kind == START_RUN, OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)
    )
    return session.scalar(query) or 0


def report(session: Session, run_id: str) -> dict[str, Any]:
    """The run's report, with the queue's length read now."""
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound(f"no import {run_id}")
    return report_of(session, run)


def report_of(session: Session, run: ImportRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "platform": run.platform,
        "source": run.source,
        "actor": run.actor,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "created": run.created,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "rejected": run.rejected,
        "rejections": run.rejections or [],
        "queued": queued_starts(session),
    }


def recent_runs(session: Session, *, limit: int = 50) -> list[ImportRun]:
    return list(session.scalars(select(ImportRun).order_by(ImportRun.started_at.desc()).limit(limit)))
