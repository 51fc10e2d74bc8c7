"""The morning digest: once a local day, each role's overdue and at-risk work in one message per channel.

Made by the sweeper in whichever process first sees the digest time: a row per local day
(daily_digest_runs) is inserted in the transaction that queues the messages, so across any number of
workers the day's digest is queued exactly once. A role with nothing overdue or at risk gets none.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import DailyDigestRun, HumanTask, User
from ecomflow.engine.db.sessions import insert_unless_exists, session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.events.notices import holders_of, role_title, task_notice
from ecomflow.engine.events.routing import enqueue_channel_message
from ecomflow.engine.events.routing_file import RoutingSpec, get_routing
from ecomflow.engine.tasks.states import ACTIVE_STATES

logger = logging.getLogger("ecomflow.digests")
EVENT = "daily_digest"
# Tasks listed per role; the message counts the rest and links to the inbox.
MAX_ITEMS = 50


def queue_daily_digest_if_due(*, now: datetime) -> int:
    """Queue today's role digests if it is digest time and nobody has; return how many messages were queued."""
    if not get_settings().channels:
        return 0
    routing, definitions = get_routing(), get_definitions()
    local = now.astimezone(ZoneInfo(definitions.timezone))
    schedule = routing.digest
    if not schedule.at <= local.time() < schedule.until:
        return 0
    if schedule.working_days_only and not definitions.calendar.is_working_day(local.date()):
        return 0
    day = local.date().isoformat()
    with session_scope() as session:
        if session.get(DailyDigestRun, day) is not None:
            return 0
        # The unique day decides which sweeper makes the digest; the loser's insert changes nothing.
        if not insert_unless_exists(session, DailyDigestRun(day=day, made_at=now)):
            return 0
        queued = queue_role_digests(session, routing=routing, definitions=definitions, now=now)
    logger.info("daily digest of %s: %d message(s) queued", day, queued)
    return queued


def queue_role_digests(session: Session, *, routing: RoutingSpec, definitions: Definitions, now: datetime) -> int:
    """Queue one digest per role that has overdue or at-risk work, to each channel its routes name."""
    settings = get_settings()
    queued = 0
    for role in definitions.roles:
        names = routing.channels_for(event=EVENT, roles=frozenset({role}), process=None)
        channels = [channel for channel in settings.channels if channel.name in names]
        if not channels:
            continue
        tasks = _late_tasks(session, role=role, now=now)
        if not tasks:
            continue
        notice = _digest_notice(session, role, tasks, routing=routing, definitions=definitions, now=now)
        assignees = sorted({task.assignee for task in tasks[:MAX_ITEMS] if task.assignee})
        mentioned = list(session.scalars(select(User).where(User.name.in_(assignees), User.active.is_(True))))
        for channel in channels:
            people = holders_of(session, frozenset({role})) if channel.type == "email" else mentioned
            message = enqueue_channel_message(
                session, channel=channel, event=EVENT, notice=notice, people=people, occurred_at=now
            )
            queued += message is not None
    return queued


def _late_tasks(session: Session, *, role: str, now: datetime) -> list[HumanTask]:
    """Return the role's open tasks that are overdue or at risk: overdue first, each group by due time."""
    query = (
        select(HumanTask)
        .where(
            HumanTask.state.in_(sorted(ACTIVE_STATES)),
            access.tasks_workable_by([role]),
            or_(HumanTask.due_at <= now, HumanTask.at_risk.is_(True)),
        )
        .order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.id)
    )
    tasks = list(session.scalars(query))
    return sorted(tasks, key=lambda task: not _is_overdue(task, now))


def _is_overdue(task: HumanTask, now: datetime) -> bool:
    return task.due_at is not None and task.due_at <= now


def _digest_notice(
    session: Session,
    role: str,
    tasks: list[HumanTask],
    *,
    routing: RoutingSpec,
    definitions: Definitions,
    now: datetime,
) -> dict[str, Any]:
    language = routing.language
    overdue = sum(_is_overdue(task, now) for task in tasks)
    items = []
    for task in tasks[:MAX_ITEMS]:
        item = task_notice(session, task, event=EVENT, language=language, definitions=definitions)
        item["state"] = "overdue" if _is_overdue(task, now) else "at_risk"
        items.append(item)
    return {
        "event": EVENT,
        "language": language,
        "timezone": definitions.timezone,
        "role": role_title(definitions, role, language),
        "overdue": overdue,
        "at_risk": len(tasks) - overdue,
        "items": items,
        "more": max(len(tasks) - MAX_ITEMS, 0),
        "link": f"{get_settings().resolved_public_url}/ui?role={role}",
        "link_label": "open_inbox",
    }
