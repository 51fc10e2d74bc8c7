"""售前咨询下单流程 — pre-sales inquiry and order, process 9 of PROCESSES.md (high volume)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake.inquiry_orders import join_from_inquiry
from ecomflow.engine.intake.waves import inquiry_reservation_key
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.shop.catalog import list_locations, priced_variants
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, available_by_sku, reserve_order, settle_order
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "presales_order"
# A backordered order has its stock checked again this long after operations decided to wait.
BACKORDER_RECHECK = timedelta(days=1)


def reservation_key(instance_id: str, *, partial: bool) -> str:
    """Return the key that makes an order's stock reservation happen once, whatever replays happen."""
    # Distinct keys: a partial reservation made after a shortage never mistakes itself for the full one.
    # The key lives with the waves, whose 审单 keeps this reservation for the order (version 3).
    return inquiry_reservation_key(instance_id, partial=partial)


def stock_location(fulfilment: str, pickup_store: str | None, known: set[str]) -> str:
    """Return where an order takes its stock: the pickup store if it is a stock location, else the online warehouse."""
    if fulfilment == "store_pickup" and pickup_store in known:
        return str(pickup_store)
    return ONLINE_WAREHOUSE


@task
def stock_check(
    instance_id: str, lines: list[dict[str, Any]], fulfilment: str, partial: bool, pickup_store: str | None = None
) -> dict[str, Any]:
    """Reserve the order's lines in the stock ledger (the pickup store's stock, else the online warehouse).

    With partial, reserve what the stock has of each line instead, and report the rest as unfilled.
    """
    wanted = [(line["sku"], int(line["quantity"])) for line in lines]
    with session_scope() as session:
        location = stock_location(fulfilment, pickup_store, {loc.code for loc in list_locations(session)})
        if partial:
            available = available_by_sku(session, [sku for sku, _ in wanted], location=location)
            wanted = [(sku, min(qty, available.get(sku, 0))) for sku, qty in wanted if available.get(sku, 0) > 0]
            if not wanted:
                short = [
                    {"sku": line["sku"], "location": location, "wanted": int(line["quantity"]), "available": 0}
                    for line in lines
                ]
                return {"reserved": False, "lines": [], "short": short, "partial": True, "unfilled": []}
        key = reservation_key(instance_id, partial=partial)
        result = reserve_order(
            session, key=key, instance_id=instance_id, lines=wanted, location=location, actor=SYSTEM_ACTOR
        )
    taken = {line["sku"]: line["quantity"] for line in result["lines"]}
    unfilled = [
        {"sku": line["sku"], "quantity": int(line["quantity"]) - taken.get(line["sku"], 0)}
        for line in lines
        if result["reserved"] and int(line["quantity"]) > taken.get(line["sku"], 0)
    ]
    return {**result, "partial": partial, "unfilled": unfilled}


def _settle(instance_id: str, kind: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        return [
            line
            for partial in (False, True)
            for line in settle_order(
                session,
                key=reservation_key(instance_id, partial=partial),
                kind=kind,
                actor=SYSTEM_ACTOR,
                instance_id=instance_id,
            )
        ]


@task
def put_back_stock(instance_id: str) -> dict[str, Any]:
    """Release the reservation of an uncollected order in the ledger, once."""
    return {"released": _settle(instance_id, "release")}


@task
def ship_stock(instance_id: str, kind: str) -> dict[str, Any]:
    """Book the reserved goods out of the ledger as shipped or picked up at the store, once per line."""
    return {"moved": _settle(instance_id, kind)}


def _book_out(run: ProcessRun, kind: str) -> list[dict[str, Any]]:
    """Move the reserved stock out; the ledger's business keys make a replay move nothing twice."""
    return ship_stock.with_options(name=f"stock_{kind}")(run.instance_id, kind)["moved"]


def merge_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the order lines with one line per SKU (quantities of repeated SKUs added up)."""
    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line["sku"]] = quantities.get(line["sku"], 0) + int(line["quantity"])
    return [{"sku": sku, "quantity": qty} for sku, qty in quantities.items()]


def _order_findings(answer: dict[str, Any]) -> list[dict[str, str]]:
    """Return what an answer marked ordered lacks: the order id and its lines."""
    if answer["outcome"] != "ordered":
        return []
    missing = {
        "order_id": "an ordered inquiry needs the order id",
        "order_lines": "an ordered inquiry needs its order lines",
    }
    return [
        {"field": field, "rule": "required_when_ordered", "message": message}
        for field, message in missing.items()
        if not answer.get(field)
    ]


@task
def answer_check(answer: dict[str, Any]) -> dict[str, Any]:
    """Return the answer's findings: a missing order id or lines, and every SKU it names that the shop does not know."""
    named = [
        *((f"recommended_skus[{i}]", sku) for i, sku in enumerate(answer.get("recommended_skus") or [])),
        *((f"order_lines[{i}].sku", line["sku"]) for i, line in enumerate(answer.get("order_lines") or [])),
    ]
    with session_scope() as session:
        known = priced_variants(session, sorted({sku for _, sku in named}))
    unknown = [
        {"field": field, "rule": "unknown_sku", "message": f"{field}: SKU {sku} is not in the catalogue"}
        for field, sku in named
        if sku not in known
    ]
    return {"findings": _order_findings(answer) + unknown}


def _answer(run: ProcessRun) -> StepOutcome:
    """Answer the inquiry; an order without its id or lines, or a SKU the shop lacks, goes back, round+1."""
    round, context = 1, {"customer": run.params["customer"], "question": run.params["question"]}
    # Version 1 had no answer_check: its answers are checked for the order id and lines only.
    checks_skus = any(step.key == "answer_check" for step in run.spec.steps)
    while True:
        answer = run.human("answer_inquiry", round=round, context=context)
        if checks_skus:
            findings = run.auto("answer_check", answer_check, answer.data, round=round)["findings"]
        else:
            findings = _order_findings(answer.data)
        if not findings:
            return answer
        context = {**context, "findings": findings, "previous_answer": answer.data}
        round = run.next_round("answer_inquiry", round)


def _reserve(
    run: ProcessRun, order: dict[str, Any], lines: list[dict[str, Any]], fulfilment: str, pickup_store: str | None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Reserve the stock; on a shortage operations decides, until it is reserved or the order is cancelled.

    backorder: check again after BACKORDER_RECHECK; transfer_from_store: the goods were moved in and
    booked into the shared stock, check again at once; partial_ship: reserve what there is;
    cancel_order: nothing is reserved. Returns the reservation (None when cancelled) and the decisions.
    """
    round, partial, decisions = 1, False, []
    while True:
        stock = run.auto(
            "stock_check", stock_check, run.instance_id, lines, fulfilment, partial, pickup_store, round=round
        )
        if stock["reserved"]:
            return stock, decisions
        decision = run.human(
            "shortage_decision",
            round=round,
            context={
                "order": order,
                "lines": lines,
                "fulfilment": fulfilment,
                "short": stock["short"],
                "earlier_decisions": decisions,
            },
        )
        choice = decision.data["decision"]
        decisions = [
            *decisions,
            {"round": round, "decision": choice, "by": decision.by, "notes": decision.data.get("notes", "")},
        ]
        if choice == "cancel_order":
            return None, decisions
        partial = choice == "partial_ship"
        if choice == "backorder":
            run.wait_until("stock_check", _at(decision) + BACKORDER_RECHECK, round=round + 1)
        round += 1


def _at(outcome: StepOutcome) -> datetime:
    assert outcome.at is not None  # a completed task always has its completion time
    return outcome.at


def _fulfil(run: ProcessRun, context: dict[str, Any]) -> dict[str, Any]:
    """审单 → 打单 → 配货 → 验货打包 → 发货, all by the warehouse; a cancel at review puts the stock back."""
    if not any(step.key == "review_order" for step in run.spec.steps):
        return _ship_v1(run, context)
    review = run.human("review_order", context=context)
    if review.data["result"] == "cancel":
        released = run.auto("release_stock", put_back_stock, run.instance_id)["released"]
        return run.finish(
            "cancelled_at_review", **context, review=review.data, reviewed_by=review.by, stock_released=released
        )
    waybill = run.human("print_waybill", context=context)
    context = {**context, "waybill_no": waybill.data["waybill_no"]}
    picked = run.human("pick", context=context)
    packed = run.human("check_and_pack", context={**context, "pick": picked.data})
    shipped = run.human("ship", context={**context, "packages": packed.data["packages"]})
    _book_out(run, "ship")
    return run.finish("shipped", **context, **shipped.data)


def _ship_v1(run: ProcessRun, context: dict[str, Any]) -> dict[str, Any]:
    """Version 1: 打单/配货 → 审单/打包 → 发货, all by the warehouse."""
    picked = run.human("print_and_pick", context=context)
    packed = run.human("verify_and_pack", context={**context, "waybill_no": picked.data["waybill_no"]})
    shipped = run.human(
        "ship", context={**context, "waybill_no": picked.data["waybill_no"], "packages": packed.data["packages"]}
    )
    _book_out(run, "ship")
    return run.finish("shipped", **context, waybill_no=picked.data["waybill_no"], **shipped.data)


@task
def join_wave(
    instance_id: str, platform: str, order_no: str, customer: str, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    """Record the order as a paid platform order in its wave (once per inquiry); return where it went."""
    with session_scope() as session:
        order = join_from_inquiry(
            session,
            instance_id=instance_id,
            platform=platform,
            order_no=order_no,
            customer=customer,
            lines=lines,
            actor=SYSTEM_ACTOR,
        )
        return {"platform": order.platform, "order_no": order.order_no, "wave_id": order.wave_id}


def _to_wave(run: ProcessRun, context: dict[str, Any], platform: str) -> dict[str, Any]:
    """Version 3: the order joins the waves, which do 审单…发货 for every paid order; this instance is done."""
    order = context["order"]
    joined = run.auto(
        "join_wave", join_wave, run.instance_id, platform, order["order_id"], order["customer"], context["lines"]
    )
    return run.finish("in_wave", **context, **joined)


def _store_pickup(run: ProcessRun, context: dict[str, Any]) -> dict[str, Any]:
    """网上购物店内取货: the warehouse prepares the goods at the store, customer service confirms the pickup."""
    prepared = run.human("prepare_pickup", context=context)
    collected = run.human("picked_up", context={**context, "prepared": prepared.data})
    details = {**context, "store": prepared.data["store"], "pickup": collected.data}
    if collected.data["outcome"] == "not_collected":
        details["stock_released"] = run.auto("release_stock", put_back_stock, run.instance_id)["released"]
    else:
        _book_out(run, "store_pickup")
    return run.finish(collected.data["outcome"], **details)


@process_flow(PROCESS, written_for={1, 2, 3})
def presales_order(run: ProcessRun) -> dict[str, Any]:
    """售前咨询下单流程: answer, stock check (one stock), shortage decision, then a wave (v3; v1–2 审单…发货 here)
    or store pickup."""
    answer = _answer(run)
    if answer.data["outcome"] != "ordered":
        return run.finish("no_order", answered_by=answer.by, recommended_skus=answer.data.get("recommended_skus", []))
    fulfilment = answer.data.get("fulfilment") or "ship"
    order = {
        "order_id": answer.data["order_id"],
        "customer": run.params["customer"],
        "notes": answer.data.get("notes", ""),
    }
    lines = merge_lines(answer.data["order_lines"])
    stock, decisions = _reserve(run, order, lines, fulfilment, answer.data.get("pickup_store"))
    if stock is None:
        return run.finish("cancelled", order_id=order["order_id"], shortage_decisions=decisions)
    context = {"order": order, "lines": stock["lines"], "unfilled": stock["unfilled"], "shortage_decisions": decisions}
    if fulfilment == "store_pickup":
        return _store_pickup(run, {**context, "pickup_store": answer.data.get("pickup_store")})
    if any(step.key == "join_wave" for step in run.spec.steps):
        return _to_wave(run, context, answer.data.get("platform") or "tmall")
    return _fulfil(run, context)
