"""What finished processes leave behind: copy library texts, campaigns, KPI targets — each once per instance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import Campaign, CopyEntry, KpiTarget
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


def _insert_once(session: Session, row: Any, existing: Any) -> bool:
    return existing is None and insert_unless_exists(session, row)


def save_copy(session: Session, *, instance_id: str, scenario: str, channel: str, text: str) -> CopyEntry:
    """Put reviewed care copy into the library, once per instance."""
    existing = session.scalar(select(CopyEntry).where(CopyEntry.instance_id == instance_id))
    row = CopyEntry(instance_id=instance_id, scenario=scenario, channel=channel, text=text)
    if _insert_once(session, row, existing):
        record_event(
            session,
            type="copy.published",
            actor=SYSTEM_ACTOR,
            instance_id=instance_id,
            data={"scenario": scenario, "channel": channel},
        )
        return row
    return session.scalar(select(CopyEntry).where(CopyEntry.instance_id == instance_id))


def save_campaign(
    session: Session,
    *,
    instance_id: str,
    theme: str,
    starts_on: str,
    ends_on: str,
    budget: Decimal,
    details: dict[str, Any],
) -> Campaign:
    """Record an approved campaign, once per instance."""
    existing = session.scalar(select(Campaign).where(Campaign.instance_id == instance_id))
    row = Campaign(
        instance_id=instance_id, theme=theme, starts_on=starts_on, ends_on=ends_on, budget=budget, details=details
    )
    if _insert_once(session, row, existing):
        record_event(
            session, type="campaign.approved", actor=SYSTEM_ACTOR, instance_id=instance_id, data={"theme": theme}
        )
        return row
    return session.scalar(select(Campaign).where(Campaign.instance_id == instance_id))


def save_targets(
    session: Session, *, plan_instance_id: str, quarter: str, decomposition: dict[str, list[dict[str, str]]]
) -> int:
    """Store a plan's monthly and departmental revenue targets; return how many were new."""
    rows = [("month", m["month"], m["revenue"]) for m in decomposition["months"]]
    rows += [("department", d["department"], d["revenue"]) for d in decomposition["departments"]]
    added = 0
    for scope, key, revenue in rows:
        existing = session.scalar(
            select(KpiTarget).where(
                KpiTarget.plan_instance_id == plan_instance_id, KpiTarget.scope == scope, KpiTarget.key == key
            )
        )
        row = KpiTarget(
            plan_instance_id=plan_instance_id, quarter=quarter, scope=scope, key=key, revenue=Decimal(revenue)
        )
        added += _insert_once(session, row, existing)
    if added:
        record_event(
            session,
            type="targets.published",
            actor=SYSTEM_ACTOR,
            instance_id=plan_instance_id,
            data={"quarter": quarter, "targets": added},
        )
    return added
