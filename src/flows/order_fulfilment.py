"""订单履约 (波次) — a wave of paid platform orders: 审单 → 打单 → 配货 → 验货打包 → 发货.

One instance per wave (engine/intake/waves.py starts it when the wave closes). An order that fails 审单 or
验货打包 leaves into a wave of its own whose instance starts at review_exception (customer service); the
rest of the wave goes on at once. Orders cancelled on the platform meanwhile are skipped by every step.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import fulfilment
from ecomflow.engine.intake.shipment_files import upload_link
from ecomflow.engine.intake.wave_files import file_links
from ecomflow.engine.intake.waves import IN_WAVE, PICKED, PRINTED
from ecomflow.flows.primitives import ProcessRun
from ecomflow.flows.process_flow import process_flow

PROCESS = "order_fulfilment"


@task
def review_orders(wave_id: int, instance_id: str) -> dict[str, Any]:
    """审单 by rules: reserve the passing orders; exceptions leave into cases of their own."""
    with session_scope() as session:
        return fulfilment.review_wave(session, wave_id, instance_id=instance_id)


@task
def apply_review(wave_id: int, decision: str, by: str, notes: str, instance_id: str) -> dict[str, Any]:
    """Apply customer service's decision on an order that left its wave."""
    with session_scope() as session:
        return fulfilment.review_case(session, wave_id, decision=decision, by=by, notes=notes, instance_id=instance_id)


@task
def record_progress(wave_id: int, source: str, target: str, event: str, by: str, data: dict[str, Any]):
    """Move the wave's orders one stage on, each with its history entry."""
    with session_scope() as session:
        moved = fulfilment.advance(session, wave_id, source=source, target=target, event=event, by=by, **data)
    return {"orders": moved}


@task
def record_scans(wave_id: int, form: dict[str, Any], by: str) -> dict[str, Any]:
    """验货打包: pack the ok orders, send the problem ones into cases; findings when a scan is missing."""
    with session_scope() as session:
        return fulfilment.apply_scans(session, wave_id, form, by=by, source=PICKED)


@task
def shipment_check(wave_id: int, shipments: list[dict[str, Any]]) -> dict[str, Any]:
    """Check the ship form names a tracking number for every packed order and nothing else."""
    with session_scope() as session:
        return {"findings": fulfilment.check_shipments(session, wave_id, shipments)}


@task
def book_out(wave_id: int, shipments: list[dict[str, Any]], by: str, instance_id: str) -> dict[str, Any]:
    """Book each shipped order's stock out (once per order) and keep its tracking number; the wave is done."""
    with session_scope() as session:
        return fulfilment.ship_wave(session, wave_id, shipments, by=by, instance_id=instance_id)


def _review_case(run: ProcessRun, wave_id: int, reasons: list[dict[str, str]]) -> dict[str, Any] | None:
    """Customer service reviews an order on its own until it passes with its stock reserved, or is cancelled."""
    round = 1
    while True:
        decision = run.human(
            "review_exception", round=round, context={"wave_id": wave_id, "reasons": reasons, **_files(wave_id)}
        )
        notes = decision.data.get("notes") or ""
        applied = run.auto(
            "apply_review",
            apply_review,
            wave_id,
            decision.data["decision"],
            decision.by,
            notes,
            run.instance_id,
            round=round,
        )
        if applied["result"] == "pass":
            return None
        if applied["result"] in ("cancelled", "gone"):
            return run.finish(applied["result"], wave_id=wave_id, review=applied, reviewed_by=decision.by)
        reasons = applied["reasons"]  # still short of stock: customer service decides again
        round = run.next_round("review_exception", round)


def _files(wave_id: int) -> dict[str, Any]:
    return {"files": file_links(wave_id, "waybills.csv", "pick-list.csv")}


def _with_findings(run, step: str, check, wave_id: int, context: dict[str, Any]):
    """Run a warehouse step until its auto check has no findings; return its outcome and the check's result."""
    round = 1
    while True:
        outcome = run.human(step, round=round, context=context)
        checked = check(outcome, round)
        if not checked["findings"]:
            return outcome, checked
        context = {**context, "findings": checked["findings"], "previous": outcome.data}
        round = run.next_round(step, round)


@process_flow(PROCESS, written_for={1})
def order_fulfilment(run: ProcessRun) -> dict[str, Any]:
    """订单履约 (波次): 审单 (rules, exceptions to customer service), 打单, 配货, 验货打包, 发货."""
    return fulfil_wave(run)


def fulfil_wave(run: ProcessRun) -> dict[str, Any]:
    """Work a wave (or an order on its own) through its steps; the flow's body, callable with a test's run."""
    wave_id = int(run.params["wave_id"])
    reasons = run.params.get("reasons") or []
    details: dict[str, Any] = {"wave_id": wave_id}
    if reasons:
        ended = _review_case(run, wave_id, reasons)
        if ended is not None:
            return ended
    else:
        details["review"] = run.auto("review_orders", review_orders, wave_id, run.instance_id)
        if not details["review"]["passed"]:
            return run.finish("no_orders_left", **details)
    context = {"wave_id": wave_id, **_files(wave_id)}
    printed = run.human("print_waybills", context=context)
    run.auto(
        "waybills_printed", record_progress, wave_id, IN_WAVE, PRINTED, "waybill_printed", printed.by, printed.data
    )
    picked = run.human("pick", context=context)
    run.auto("picked", record_progress, wave_id, PRINTED, PICKED, "picked", picked.by, picked.data)
    _, scans = _with_findings(
        run,
        "check_and_pack",
        lambda outcome, round: run.auto("record_scans", record_scans, wave_id, outcome.data, outcome.by, round=round),
        wave_id,
        context,
    )
    details["packed"], details["left_at_packing"] = scans["packed"], scans["problems"]
    if not scans["packed"]:
        return run.finish("no_orders_left", **details)
    shipped, _ = _with_findings(
        run,
        "ship",
        lambda outcome, round: run.auto(
            "shipment_check", shipment_check, wave_id, outcome.data["shipments"], round=round
        ),
        wave_id,
        {**context, "upload": upload_link(wave_id)},
    )
    booked = run.auto("book_out", book_out, wave_id, shipped.data["shipments"], shipped.by, run.instance_id)
    files = file_links(wave_id, "delivery-upload")
    return run.finish("shipped", **details, shipped=booked["shipped"], cancelled=booked["cancelled"], files=files)
