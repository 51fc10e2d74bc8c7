"""Bulk rows of a big database, written straight with core inserts: instances, tasks, audit events, users.

The rows look like a shop's history: instances over the processes of flows.yaml (the high-volume
ones more often), completed steps with their audit events, and open or claimed tasks of the
instances still running, with due, reminder and escalation times from the definitions' SLAs.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

STAFF_PER_ROLE = 3
CLAIMED_SHARE = 0.25
# An instance of a high-volume process (returns, pre-sales) is this many times as common as another.
HIGH_VOLUME_WEIGHT = 5
FLUSH_INSTANCES = 1000
SLOT_SPAN = timedelta(hours=28.5)
MANAGER = "bench-manager"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def add_users(url: str, users: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Create each user with its roles; return each one's bearer token."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.people.users import add_user

    known_roles = get_definitions().roles
    with session_scope(url) as session:
        return {
            name: add_user(session, name=name, roles=roles, known_roles=known_roles)[1] for name, roles in users.items()
        }


class Seeder:
    """Write instances, tasks and audit events with executemany of core inserts, a batch per transaction."""

    def __init__(self, url: str, *, rng: random.Random, now: datetime) -> None:
        from sqlalchemy import event, insert

        from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance
        from ecomflow.engine.db.sessions import make_engine
        from ecomflow.engine.definitions.current import get_definitions
        from ecomflow.sample_data import sample_object

        self.engine = make_engine(url)  # its own engine: its connections never serve the timed part
        if url.startswith("sqlite"):
            # A big page cache for the bulk load only; the timed part runs with the product's settings.
            event.listen(self.engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA cache_size=-262144"))
        self.rng, self.now = rng, now
        self.definitions = get_definitions()
        self.inserts = [insert(t.__table__) for t in (ProcessInstance, HumanTask, AuditEvent)]
        self.processes = [p for p in self.definitions.processes.values() if any(s.is_human for s in p.steps)]
        self.weights = [HIGH_VOLUME_WEIGHT if p.volume == "high" else 1 for p in self.processes]
        self.params = {p.key: sample_object(p.start_form.json_schema) for p in self.processes}
        self.outputs = {
            (p.key, s.key): sample_object(s.form.json_schema) for p in self.processes for s in p.steps if s.is_human
        }
        self.staff = {role: [f"{role}-{i}" for i in range(1, STAFF_PER_ROLE + 1)] for role in self.definitions.roles}
        self.rows: list[list[dict[str, Any]]] = [[], [], []]
        self.counts: Counter[str] = Counter()
        self.active_by_role: Counter[str] = Counter()
        self.insert_s = 0.0

    def _lanes(self, step: Any) -> list[tuple[str, str]]:
        return [(role, role) for role in step.roles] if step.kind == "parallel" else [(step.role, "")]

    def _steps(self, process: Any) -> list[Any]:
        # A conditional step (`when`) happens in about half of the instances.
        return [s for s in process.steps if s.is_human and (s.when is None or self.rng.random() < 0.5)]

    def _event(self, type: str, at: datetime, actor: str, instance_id: str, task_id: str | None, data: dict) -> None:
        self.rows[2].append(
            {"type": type, "at": at, "actor": actor, "instance_id": instance_id, "task_id": task_id, "data": data}
        )

    def _task(
        self,
        process: Any,
        step: Any,
        role: str,
        lane: str,
        *,
        instance_id: str,
        created: datetime,
        state: str,
        context: dict,
        done_by: dict[str, str],
    ) -> None:
        from ecomflow.engine.sla.sweeps import due_times

        rng = self.rng
        times = due_times(calendar=self.definitions.calendar, step=step, sla=self.definitions.sla, now=created)
        task_id, assignee, claimed_at, completed_at, escalated_to = _uuid(rng), None, None, None, None
        if state == "completed":
            claimed_at = created + _minutes(rng, 1, 240)
            completed_at = claimed_at + _minutes(rng, 5, 1440)
            assignee = rng.choice(self.staff[role])
        elif state == "claimed":
            claimed_at = min(created + _minutes(rng, 1, 240), self.now)
            assignee = rng.choice(self.staff[role])
        escalated = state != "completed" and times.escalate_at is not None and times.escalate_at <= self.now
        if escalated:
            escalated_to = step.escalate.to if step.escalate else None
            if step.escalate and step.escalate.release and state == "claimed":
                state, assignee, claimed_at = "open", None, None
        version = {"open": 1, "claimed": 2, "completed": 3}[state]
        approved_by = done_by.get(step.approves) if step.approves else None
        self.rows[1].append(
            {
                "id": task_id,
                "instance_id": instance_id,
                "process_key": process.key,
                "step_key": step.key,
                "kind": step.kind,
                "round": 1,
                "lane": lane,
                "role": role,
                "state": state,
                "assignee": assignee,
                "excluded_users": [approved_by] if approved_by else [],
                "priority": step.priority if rng.random() > 0.05 else 75,
                "due_at": times.due_at,
                "expires_at": created + step.expires if step.expires else None,
                "context": context,
                "output": self.outputs[(process.key, step.key)] if state == "completed" else None,
                "completed_by": assignee if state == "completed" else None,
                "version": version,
                "created_at": created,
                "claimed_at": claimed_at,
                "completed_at": completed_at,
                "remind_at": times.remind_at,
                "reminded_at": times.remind_at
                if state != "completed" and times.remind_at and times.remind_at <= self.now
                else None,
                "overdue_at": times.due_at if times.due_at and times.due_at <= (completed_at or self.now) else None,
                "escalate_at": times.escalate_at,
                "escalated_at": times.escalate_at if escalated else None,
                "escalated_to": escalated_to,
                # The sweeper's forecast marks some open work as likely to miss its due time.
                "at_risk": state != "completed" and rng.random() < 0.1,
            }
        )
        self._event(
            "task.created", created, "system", instance_id, task_id, {"step": step.key, "round": 1, "role": role}
        )
        if claimed_at:
            self._event(
                "task.claimed",
                claimed_at,
                assignee,
                instance_id,
                task_id,
                {"from": "open", "action": "claim", "assignee": assignee},
            )
        if completed_at:
            self._event(
                "task.completed",
                completed_at,
                assignee,
                instance_id,
                task_id,
                {"from": "claimed", "action": "complete"},
            )
            done_by[step.key] = assignee
        self.counts[state] += 1
        if state != "completed":
            self.active_by_role[role] += 1

    def add_instance(self, *, open_budget: int, closed_budget: int) -> None:
        """Add one instance: completed steps, then (with an open budget) the lanes of its current step."""
        rng = self.rng
        process = rng.choices(self.processes, self.weights)[0]
        steps = self._steps(process)
        active = open_budget > 0
        current = rng.randrange(len(steps)) if active else len(steps)
        history, waiting = steps[:current], (steps[current] if active else None)
        # Backlog age of the waiting step: mostly days, some weeks; a completed instance ended up to a year ago.
        end = self.now - (
            timedelta(seconds=min(rng.expovariate(1 / (3 * 86400)), 30 * 86400))
            if active
            else timedelta(days=rng.uniform(0, 365))
        )
        # Each completed task takes at most SLOT_SPAN (claim ≤ 4 h, work ≤ 1 day, hand-over ≤ 10 min).
        start = end - SLOT_SPAN * sum(len(self._lanes(step)) for step in history) - _minutes(rng, 1, 10)
        instance_id = _uuid(rng)
        business_key = f"{process.key}-{self.counts['instances']:08d}"
        done_by: dict[str, str] = {}
        context: dict[str, Any] = {}
        at, closed = start, 0
        for step in history:
            for role, lane in self._lanes(step):
                if closed >= closed_budget:
                    break
                self._task(
                    process,
                    step,
                    role,
                    lane,
                    instance_id=instance_id,
                    created=at,
                    state="completed",
                    context=context,
                    done_by=done_by,
                )
                at = self.rows[1][-1]["completed_at"] + _minutes(rng, 0, 10)
                closed += 1
            context = {"previous": self.outputs[(process.key, step.key)]}
        if waiting is not None:
            at = end
            for role, lane in self._lanes(waiting)[:open_budget]:
                state = "claimed" if rng.random() < CLAIMED_SHARE else "open"
                self._task(
                    process,
                    waiting,
                    role,
                    lane,
                    instance_id=instance_id,
                    created=at,
                    state=state,
                    context=context,
                    done_by=done_by,
                )
        ended = None if active else (self.rows[1][-1]["completed_at"] if closed else start)
        self.rows[0].append(
            {
                "id": instance_id,
                "process_key": process.key,
                "definition_version": process.version,
                "business_key": business_key,
                "active_key": business_key if active else None,
                "state": "waiting" if active else "completed",
                "params": self.params[process.key],
                "result": None,
                "parent_id": None,
                "parent_step": None,
                "flow_run_id": _uuid(rng),
                "started_by": "system",
                "created_at": start,
                "updated_at": ended or at,
                "ended_at": ended,
            }
        )
        self._event("instance.started", start, "system", instance_id, None, {"business_key": business_key})
        self.counts["instances"] += 1
        if len(self.rows[0]) >= FLUSH_INSTANCES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows, a batch per table, in one transaction."""
        started = time.monotonic()
        with self.engine.begin() as conn:
            for statement, rows in zip(self.inserts, self.rows, strict=True):
                if rows:
                    conn.execute(statement, rows)
                    self.counts[f"rows_{statement.table.name}"] += len(rows)
        self.rows = [[], [], []]
        self.insert_s += time.monotonic() - started

    def close(self) -> None:
        """Write what is left and dispose the seeder's own engine."""
        self.flush()
        self.engine.dispose()


def seed(url: str, *, open_tasks: int, closed_tasks: int, rng: random.Random) -> dict[str, Any]:
    """Fill the database; return the counts, the busiest staff role and each user's token."""
    from ecomflow.engine.clock import utcnow

    started = time.monotonic()
    seeder = Seeder(url, rng=rng, now=utcnow())
    try:
        while seeder.counts["open"] + seeder.counts["claimed"] < open_tasks:
            left = open_tasks - seeder.counts["open"] - seeder.counts["claimed"]
            seeder.add_instance(open_budget=left, closed_budget=max(0, closed_tasks - seeder.counts["completed"]))
        while seeder.counts["completed"] < closed_tasks:
            seeder.add_instance(open_budget=0, closed_budget=closed_tasks - seeder.counts["completed"])
    finally:
        seeder.close()
    roles = seeder.definitions.roles
    users = {name: (role,) for role, names in seeder.staff.items() for name in names}
    users |= {f"bench-{role}": (role,) for role in roles}
    users[MANAGER] = ("operations",)
    tokens = add_users(url, users)
    seconds = time.monotonic() - started
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done on a database this old
    staff_roles = [r for r in seeder.active_by_role if not roles[r].manager]
    busiest = max(staff_roles, key=lambda r: seeder.active_by_role[r])
    rows = sum(v for k, v in seeder.counts.items() if k.startswith("rows_"))
    return {
        "counts": dict(seeder.counts),
        "active_by_role": dict(seeder.active_by_role),
        "tokens": tokens,
        "staff_role": busiest,
        "staff_user": f"{busiest}-1",
        "seed_s": round(seconds, 1),
        "rows_per_s": round(rows / seconds) if seconds else 0,
        "insert_s": round(seeder.insert_s, 1),
        "vacuum_s": round(time.monotonic() - started - seconds, 1),
    }


class OpenTask(NamedTuple):
    """An open task picked for claiming: what a claim needs and what its latency is split by."""

    id: str
    role: str
    process: str
    step: str
    kind: str
    version: int


def pick_open_tasks(url: str, *, rng: random.Random, count: int) -> list[OpenTask]:
    """Return `count` random open (unclaimed) tasks."""
    from sqlalchemy import select

    from ecomflow.engine.db.models import HumanTask as T
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(url) as session:
        query = (
            select(T.id, T.role, T.process_key, T.step_key, T.kind, T.version).where(T.state == "open").order_by(T.id)
        )
        rows = [OpenTask(*row) for row in session.execute(query)]
    return rng.sample(rows, min(count, len(rows)))
