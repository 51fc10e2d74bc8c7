"""顾客关怀文案制作流程 — customer care copy, process 4 of PROCESSES.md."""

from __future__ import annotations

from typing import Any

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.rules.ad_law import find_banned_terms
from ecomflow.engine.rules.sms import check_sms
from ecomflow.engine.shop.process_records import save_copy
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "customer_care_copy"


@task
def copy_check(text: str, channel: str, rules: dict[str, Any]) -> dict[str, Any]:
    """Check the text against the advertising law and, for an SMS, the SMS rules; return every finding."""
    findings = [
        {"field": hit.field, "rule": "ad_law", "term": hit.term, "position": hit.position, "message": hit.message}
        for hit in find_banned_terms({"text": text}, banned=rules["banned_terms"])
    ]
    if channel == "sms":
        sms = rules["sms"]
        problems = check_sms(text, max_chars=int(sms["max_chars"]), opt_out=sms["opt_out"])
        findings += [{"field": "text", "rule": "sms", "message": problem} for problem in problems]
    return {"passed": not findings, "findings": findings}


@task
def publish(instance_id: str, scenario: str, channel: str, text: str) -> dict[str, Any]:
    """Put the reviewed copy into the copy library, once per instance."""
    with session_scope() as session:
        entry = save_copy(session, instance_id=instance_id, scenario=scenario, channel=channel, text=text)
        session.flush()
        return {"copy_id": entry.id, "scenario": entry.scenario, "channel": entry.channel}


def _draft_until_approved(run: ProcessRun) -> tuple[StepOutcome, StepOutcome, int]:
    """Draft, check and review the copy; a finding or a reject sends it back to the author, round+1."""
    round = 1
    context: dict[str, Any] = {"scenario": run.params.get("scenario")}
    while True:
        draft = run.human("draft_copy", round=round, context=context)
        rules = {"banned_terms": run.rule("banned_terms"), "sms": run.rule("sms")}
        check = run.auto("copy_check", copy_check, draft.data["text"], draft.data["channel"], rules, round=round)
        if not check["passed"]:
            context = {**context, "findings": check["findings"], "previous_draft": draft.data}
            context.pop("rework", None)
            round = run.next_round("draft_copy", round)
            continue
        decision = run.approval("review", round=round, context={"draft": draft.data, "drafted_by": draft.by})
        if decision.approved:
            return draft, decision, round
        context = {
            **context,
            "rework": {"round": round, "comment": decision.comment, "by": decision.by},
            "previous_draft": draft.data,
        }
        context.pop("findings", None)
        round = run.next_round("draft_copy", round)


@process_flow(PROCESS, written_for={1})
def customer_care_copy(run: ProcessRun) -> dict[str, Any]:
    """顾客关怀文案制作流程: draft, advertising-law and SMS check, review, copy library."""
    draft, decision, rounds = _draft_until_approved(run)
    entry = run.auto(
        "publish", publish, run.instance_id, draft.data["scenario"], draft.data["channel"], draft.data["text"]
    )
    return run.finish("published", copy_id=entry["copy_id"], rounds=rounds, approved_by=decision.by)
