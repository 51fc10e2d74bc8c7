"""Inbox and claim/complete latency on a big database (benchmark e).

Seeds a fresh, migrated database with bulk inserts (process instances over the processes of
flows.yaml, N open or claimed tasks, M completed ones, their audit events, users per role), starts
the real API (`ecomflow api`, no Prefect server: a complete's immediate delivery finds Prefect down
and leaves the resume queued) and times over HTTP: GET /tasks of a staff user with one role and of
a manager (first page and a later page via cursor, sorts due, priority and at_risk), then POST claim +
complete of open tasks. Without HTTP it times the same inbox query, `ecomflow.engine.tasks.actions.claim_task` in a
`session_scope` loop and a raw SQL compare-and-set loop on the same database, and prints the plans
of the inbox query and of a claim's SELECTs (before/after evidence for index changes).
Goals: inbox p95 < 20 ms, claim+complete p99 < 20 ms, engine claims ≥ 50 % of raw.

    cd /work/main && .venv/bin/python -m bench.inbox_latency --db sqlite --open 100000 --closed 1000000
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from bench import db_settings
from bench.stack import (
    IsolatedService, _create_pg_database, _drop_pg_database, add_common_options, append_results, database_size_bytes,
    free_port, loadavg, log_problems, percentile, print_report,
)

SORTS = ("due", "priority", "at_risk")
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


# --------------------------------------------------------------------------- the database


@contextmanager
def fresh_database(db: str, data_dir: Path) -> Iterator[tuple[str, float]]:
    """Make an empty database, migrate it to head, yield (url, migrate seconds), drop it afterwards."""
    from ecomflow.engine.db.sessions import get_engine
    from ecomflow.engine.db.migrate import upgrade_to_head

    pg_name = None
    if db == "postgresql":
        pg_name, url = _create_pg_database("ecomflow_bench_inbox")
    else:
        url = f"sqlite:///{data_dir / 'ecomflow.db'}"
    try:
        started = time.monotonic()
        upgrade_to_head(url)
        yield url, time.monotonic() - started
    finally:
        get_engine(url).dispose()
        if pg_name:
            _drop_pg_database(pg_name)


class Seeder:
    """Write instances, tasks and audit events with executemany of core inserts, a batch per transaction."""

    def __init__(self, url: str, *, rng: random.Random, now: datetime) -> None:
        from sqlalchemy import event, insert

        from ecomflow.sample_data import sample_object
        from ecomflow.engine.db.sessions import make_engine
        from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance
        from ecomflow.engine.definitions.current import get_definitions

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
        self.outputs = {(p.key, s.key): sample_object(s.form.json_schema) for p in self.processes for s in p.steps if s.is_human}
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
        self.rows[2].append({"type": type, "at": at, "actor": actor, "instance_id": instance_id, "task_id": task_id, "data": data})

    def _task(self, process: Any, step: Any, role: str, lane: str, *, instance_id: str, created: datetime, state: str,
              context: dict, done_by: dict[str, str]) -> None:
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
        self.rows[1].append({
            "id": task_id, "instance_id": instance_id, "process_key": process.key, "step_key": step.key, "kind": step.kind,
            "round": 1, "lane": lane, "role": role, "state": state, "assignee": assignee,
            "excluded_users": [approved_by] if approved_by else [],
            "priority": step.priority if rng.random() > 0.05 else 75, "due_at": times.due_at,
            "expires_at": created + step.expires if step.expires else None, "context": context,
            "output": self.outputs[(process.key, step.key)] if state == "completed" else None,
            "completed_by": assignee if state == "completed" else None, "version": version, "created_at": created,
            "claimed_at": claimed_at, "completed_at": completed_at, "remind_at": times.remind_at,
            "reminded_at": times.remind_at if state != "completed" and times.remind_at and times.remind_at <= self.now else None,
            "overdue_at": times.due_at if times.due_at and times.due_at <= (completed_at or self.now) else None,
            "escalate_at": times.escalate_at, "escalated_at": times.escalate_at if escalated else None,
            "escalated_to": escalated_to,
            # The sweeper's forecast marks some open work as likely to miss its due time.
            "at_risk": state != "completed" and rng.random() < 0.1,
        })
        self._event("task.created", created, "system", instance_id, task_id, {"step": step.key, "round": 1, "role": role})
        if claimed_at:
            self._event("task.claimed", claimed_at, assignee, instance_id, task_id,
                        {"from": "open", "action": "claim", "assignee": assignee})
        if completed_at:
            self._event("task.completed", completed_at, assignee, instance_id, task_id, {"from": "claimed", "action": "complete"})
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
        end = self.now - (timedelta(seconds=min(rng.expovariate(1 / (3 * 86400)), 30 * 86400)) if active
                          else timedelta(days=rng.uniform(0, 365)))
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
                self._task(process, step, role, lane, instance_id=instance_id, created=at, state="completed",
                           context=context, done_by=done_by)
                at = self.rows[1][-1]["completed_at"] + _minutes(rng, 0, 10)
                closed += 1
            context = {"previous": self.outputs[(process.key, step.key)]}
        if waiting is not None:
            at = end
            for role, lane in self._lanes(waiting)[:open_budget]:
                state = "claimed" if rng.random() < CLAIMED_SHARE else "open"
                self._task(process, waiting, role, lane, instance_id=instance_id, created=at, state=state,
                           context=context, done_by=done_by)
        ended = None if active else (self.rows[1][-1]["completed_at"] if closed else start)
        self.rows[0].append({
            "id": instance_id, "process_key": process.key, "definition_version": process.version,
            "business_key": business_key, "active_key": business_key if active else None,
            "state": "waiting" if active else "completed", "params": self.params[process.key], "result": None,
            "parent_id": None, "parent_step": None, "flow_run_id": _uuid(rng), "started_by": "system",
            "created_at": start, "updated_at": ended or at, "ended_at": ended,
        })
        self._event("instance.started", start, "system", instance_id, None, {"business_key": business_key})
        self.counts["instances"] += 1
        if len(self.rows[0]) >= FLUSH_INSTANCES:
            self.flush()

    def flush(self) -> None:
        started = time.monotonic()
        with self.engine.begin() as conn:
            for statement, rows in zip(self.inserts, self.rows, strict=True):
                if rows:
                    conn.execute(statement, rows)
                    self.counts[f"rows_{statement.table.name}"] += len(rows)
        self.rows = [[], [], []]
        self.insert_s += time.monotonic() - started

    def close(self) -> None:
        self.flush()
        self.engine.dispose()


def seed(url: str, *, open_tasks: int, closed_tasks: int, rng: random.Random) -> dict[str, Any]:
    """Fill the database; return the counts, the busiest staff role and each user's token."""
    from ecomflow.engine.clock import utcnow
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.people.users import add_user

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
    tokens = {}
    with session_scope(url) as session:
        for name, user_roles in users.items():
            tokens[name] = add_user(session, name=name, roles=user_roles, known_roles=roles)[1]
    seconds = time.monotonic() - started
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done on a database this old
    staff_roles = [r for r in seeder.active_by_role if not roles[r].manager]
    busiest = max(staff_roles, key=lambda r: seeder.active_by_role[r])
    rows = sum(v for k, v in seeder.counts.items() if k.startswith("rows_"))
    return {
        "counts": dict(seeder.counts), "active_by_role": dict(seeder.active_by_role), "tokens": tokens,
        "staff_role": busiest, "staff_user": f"{busiest}-1", "seed_s": round(seconds, 1),
        "rows_per_s": round(rows / seconds) if seconds else 0, "insert_s": round(seeder.insert_s, 1),
        "vacuum_s": round(time.monotonic() - started - seconds, 1),
    }


# --------------------------------------------------------------------------- measuring


def latency(values: list[float]) -> dict[str, float]:
    """n, p50, p95, p99 and max in milliseconds."""
    if not values:
        return {"n": 0}
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": max(ms)}


def _timed(call: Callable[[], Any], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        call()
    durations = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def _get_page(http: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
    response = http.get("/tasks", params=params)
    if response.status_code != 200:
        raise RuntimeError(f"GET /tasks {params} returned {response.status_code}: {response.text[:300]}")
    return response.json()


def _later_cursor(http: httpx.Client, params: dict[str, Any], depth: int) -> str | None:
    """Follow the cursor `depth` pages in; return the cursor of that page (or the deepest there is)."""
    cursor = None
    for _ in range(depth):
        page = _get_page(http, {**params, **({"cursor": cursor} if cursor else {})})
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    return cursor


def time_inbox_http(clients: dict[str, httpx.Client], *, requests: int, depth: int) -> dict[str, dict[str, float]]:
    """Time GET /tasks (the default inbox: active tasks, 50 a page) per user, sort and page."""
    me = next(iter(clients.values()))
    # The floor of any authenticated request: bearer-token lookup, roles, FastAPI, uvicorn.
    series = {"GET /me (authentication only)": latency(_timed(lambda: me.get("/me").raise_for_status(), requests))}
    for who, http in clients.items():
        for sort in SORTS:
            params = {"sort": sort}
            series[f"{who} · sort={sort} · first page"] = latency(_timed(lambda p=params: _get_page(http, p), requests))
            cursor = _later_cursor(http, params, depth)
            later = {**params, "cursor": cursor}
            series[f"{who} · sort={sort} · page {depth + 1} (cursor)"] = (
                latency(_timed(lambda p=later: _get_page(http, p), requests)) if cursor else {"n": 0}
            )
    return series


def time_inbox_engine(url: str, principals: dict[str, Any], *, requests: int) -> dict[str, dict[str, float]]:
    """Time list_inbox (first page, sort due) without HTTP: the database and ORM part of GET /tasks."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox

    def page(principal: Any) -> None:
        with session_scope(url) as session:
            list_inbox(session, principal=principal, filters=InboxFilter(sort="due"))

    return {f"{who} · sort=due · first page": latency(_timed(lambda p=p: page(p), requests)) for who, p in principals.items()}


class OpenTask(NamedTuple):
    id: str
    role: str
    process: str
    step: str
    kind: str
    version: int


def pick_open_tasks(url: str, *, rng: random.Random, count: int) -> list[OpenTask]:
    """Return `count` random open (unclaimed) tasks."""
    from sqlalchemy import select

    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.db.models import HumanTask as T

    with session_scope(url) as session:
        query = select(T.id, T.role, T.process_key, T.step_key, T.kind, T.version).where(T.state == "open").order_by(T.id)
        rows = [OpenTask(*row) for row in session.execute(query)]
    return rng.sample(rows, min(count, len(rows)))


def _rate(durations: list[float]) -> float:
    return len(durations) / sum(durations) if durations else 0.0


def _by_kind(durations: list[float], tasks: list[OpenTask]) -> dict[str, dict[str, float]]:
    """Split latencies into approval tasks (they run the four-eyes query) and the others."""
    split: dict[str, list[float]] = {"approval": [], "other": []}
    for duration, task in zip(durations, tasks, strict=True):
        split["approval" if task.kind == "approval" else "other"].append(duration)
    return {kind: latency(values) for kind, values in split.items()}


def _clients(base_url: str, tokens: dict[str, str], tasks: list[OpenTask]) -> dict[str, httpx.Client]:
    """One keep-alive client per role, as the bench user of that role."""
    return {t.role: httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {tokens[f'bench-{t.role}']}"},
                                 timeout=120) for t in tasks}


def time_claims_http(base_url: str, tokens: dict[str, str], tasks: list[OpenTask]) -> dict[str, Any]:
    """Claim each task over HTTP as a bench user of its role, nothing else on the connection."""
    clients, durations, failures = _clients(base_url, tokens, tasks), [], 0
    try:
        for task in tasks:
            started = time.perf_counter()
            failures += clients[task.role].post(f"/tasks/{task.id}/claim").status_code != 200
            durations.append(time.perf_counter() - started)
    finally:
        for http in clients.values():
            http.close()
    return {"latency": latency(durations), "claims_per_s": _rate(durations), "failures": failures}


def time_claim_complete_http(base_url: str, tokens: dict[str, str], tasks: list[OpenTask]) -> dict[str, Any]:
    """Claim and complete each task over HTTP with valid form data; time each call and the pair."""
    from ecomflow.sample_data import sample_object
    from ecomflow.engine.definitions.current import get_definitions

    definitions, clients = get_definitions(), _clients(base_url, tokens, tasks)
    claims, completes, pairs, done_tasks, failures = [], [], [], [], []
    try:
        for task in tasks:
            http, data = clients[task.role], sample_object(definitions.process(task.process).step(task.step).form.json_schema)
            started = time.perf_counter()
            claimed = http.post(f"/tasks/{task.id}/claim")
            middle = time.perf_counter()
            done = http.post(f"/tasks/{task.id}/complete", json={"data": data}) if claimed.status_code == 200 else claimed
            ended = time.perf_counter()
            if done.status_code != 200:
                failures.append(f"{task.process}/{task.step}: {done.status_code} {done.text[:200]}")
                continue
            claims.append(middle - started)
            completes.append(ended - middle)
            pairs.append(ended - started)
            done_tasks.append(task)
    finally:
        for http in clients.values():
            http.close()
    return {"claim": latency(claims), "complete": latency(completes), "pair": latency(pairs),
            "pair_by_kind": _by_kind(pairs, done_tasks), "failures": failures}


def time_engine_claims(url: str, tasks: list[OpenTask]) -> dict[str, Any]:
    """claim_task in a session_scope per claim, as the API route does, without HTTP."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.tasks.actions import claim_task

    durations = []
    for task in tasks:
        principal = Principal(name=f"bench-{task.role}", roles=frozenset({task.role}))
        started = time.perf_counter()
        with session_scope(url) as session:
            claim_task(session, task_id=task.id, principal=principal)
        durations.append(time.perf_counter() - started)
    return {"latency": latency(durations), "by_kind": _by_kind(durations, tasks), "claims_per_s": _rate(durations)}


def time_raw_claims(url: str, tasks: list[OpenTask]) -> dict[str, Any]:
    """The floor: one compare-and-set UPDATE and a commit per claim, straight on the DBAPI connection."""
    sql = "UPDATE human_tasks SET state='claimed', assignee={p}, version=version+1 WHERE id={p} AND state='open' AND version={p}"
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        # The same settings and transactions engine.db gives its connections.
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        begin, commit, sql = (lambda: conn.execute("BEGIN IMMEDIATE")), (lambda: conn.execute("COMMIT")), sql.format(p="?")
    else:
        import psycopg

        conn = psycopg.connect(url)
        begin, commit, sql = (lambda: None), conn.commit, sql.format(p="%s")
    durations, lost = [], 0
    try:
        for task in tasks:
            started = time.perf_counter()
            begin()
            lost += conn.execute(sql, (f"raw-{task.role}", task.id, task.version)).rowcount != 1
            commit()
            durations.append(time.perf_counter() - started)
    finally:
        conn.close()
    return {"latency": latency(durations), "claims_per_s": _rate(durations), "lost": lost}


def compare_settings(url: str, chunks: list[list[OpenTask]]) -> dict[str, Any]:
    """Each connection setting of engine/db.py against its alternative (bench.db_settings)."""
    from ecomflow.engine.db.sessions import get_engine

    if url.startswith("sqlite"):
        get_engine(url).dispose()  # the journal mode changes only with no other connection open
        return {"journal": db_settings.sqlite_journal(url, chunks[:3]), "concurrent": db_settings.sqlite_concurrent(url, chunks[3:6]),
                "reads": db_settings.sqlite_reads_during_writes(url, chunks[6:8])}

    def claim(session: Any, task: OpenTask) -> None:
        from ecomflow.engine.people.principals import Principal
        from ecomflow.engine.tasks.actions import claim_task

        claim_task(session, task_id=task.id, principal=Principal(name=f"bench-{task.role}", roles=frozenset({task.role})))

    return {"pre_ping": db_settings.pg_pre_ping(url, chunks[:2], claim)}


def captured_selects(url: str, work: Callable[[Any], Any]) -> list[tuple[str, Any]]:
    """Run work(session) in a transaction that is rolled back; return the distinct SELECTs on human_tasks it sent."""
    from sqlalchemy import event

    from ecomflow.engine.db.sessions import get_engine, get_sessionmaker

    engine, captured = get_engine(url), {}

    def grab(_conn, _cursor, statement, parameters, _context, _many) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT") and "human_tasks" in statement:
            captured.setdefault(statement, parameters)

    event.listen(engine, "before_cursor_execute", grab)
    session = get_sessionmaker(url)()
    try:
        work(session)
    finally:
        session.rollback()
        session.close()
        event.remove(engine, "before_cursor_execute", grab)
    return list(captured.items())


def explain(url: str, statement: str, parameters: Any) -> list[str]:
    """Return the plan of a statement: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL."""
    from ecomflow.engine.db.sessions import get_engine

    sqlite = url.startswith("sqlite")
    with get_engine(url).connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    if not sqlite:
        return [row[0] for row in rows]
    depth, lines = {0: -1}, []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def explain_paths(url: str, principals: dict[str, Any], approval: OpenTask | None) -> dict[str, list[str]]:
    """Plans of the inbox query (each user and sort) and of the SELECTs a claim of an approval task sends."""
    from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.tasks.actions import claim_task

    plans = {}
    for who, principal in principals.items():
        for sort in SORTS:
            selects = captured_selects(
                url, lambda s, p=principal, o=sort: list_inbox(s, principal=p, filters=InboxFilter(sort=o)))
            # The index-ordered sorts send one small SELECT per visibility branch, state and due phase, then
            # one by id: the first two and the last show their plans.
            for number, (statement, parameters) in enumerate(selects, 1):
                if 2 < number < len(selects):
                    continue
                label = f"inbox, {who} · sort={sort}" + (f" · SELECT {number}/{len(selects)}" if len(selects) > 1 else "")
                plans[label] = explain(url, statement, parameters)
    if approval is not None:
        claimer = Principal(name=f"bench-{approval.role}", roles=frozenset({approval.role}))
        selects = captured_selects(url, lambda s: claim_task(s, task_id=approval.id, principal=claimer))
        for number, (statement, parameters) in enumerate(selects, 1):
            where = " ".join(statement.split("WHERE", 1)[-1].split())
            plans[f"claim of an approval task, SELECT {number}: WHERE {where[:160]}"] = (
                explain(url, statement, parameters))
    return plans


@contextmanager
def api_service(url: str, data_dir: Path, env: dict[str, str]) -> Iterator[IsolatedService]:
    """Run `ecomflow api` on the database; Prefect points at a closed port, as when Prefect is down."""
    port = free_port()
    settings = {
        "ECOMFLOW_DATABASE_URL": url, "ECOMFLOW_DATA_DIR": str(data_dir), "ECOMFLOW_API_HOST": "127.0.0.1",
        "ECOMFLOW_API_PORT": str(port), "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
        "PREFECT_HOME": str(data_dir / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        **env,
    }
    api = IsolatedService(name="api", argv=[sys.executable, "-m", "ecomflow.cli", "api"], env=settings,
                          health_url=f"http://127.0.0.1:{port}/health", log_path=data_dir / "logs" / "api.log")
    api.start()
    try:
        api.wait_healthy(timeout=120)
        yield api
    finally:
        api.stop(timeout=20)


def _queued_resumes(url: str) -> tuple[int, int]:
    """(resume messages never delivered, of which attempted) after the run."""
    from sqlalchemy import func, select

    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.db.models import OutboxMessage

    with session_scope(url) as session:
        waiting = OutboxMessage.delivered_at.is_(None)
        count = session.scalar(select(func.count()).select_from(OutboxMessage).where(waiting))
        tried = session.scalar(select(func.count()).select_from(OutboxMessage).where(waiting, OutboxMessage.attempts > 0))
    return count, tried


def time_health_probe(n: int = 9) -> dict[str, dict[str, float]]:
    """Time the immediate delivery's Prefect health probe (after each complete's response) when nothing listens.

    api_is_healthy calls httpx.get, which builds a new client (and TLS context) per call; a shared client does not.
    """
    url = f"http://127.0.0.1:{free_port()}/api/health"

    def probe(get: Callable[..., Any]) -> None:
        try:
            get(url, timeout=2)
        except httpx.HTTPError:
            pass

    with httpx.Client() as shared:
        return {"new client per call (as api_is_healthy)": latency(_timed(lambda: probe(httpx.get), n, warmup=1)),
                "one shared client": latency(_timed(lambda: probe(shared.get), n, warmup=1))}


def run(db: str, *, open_tasks: int, closed_tasks: int, requests: int, depth: int, seed_value: int,
        env: dict[str, str] | None = None, keep_data: bool = False) -> dict[str, Any]:
    """Make and seed the database, measure, clean up; return the figures."""
    from ecomflow.engine.people.principals import Principal

    rng = random.Random(seed_value)
    data_dir = Path(tempfile.mkdtemp(prefix=f"ecomflow-bench-inbox-{db}-"))
    (data_dir / "logs").mkdir()
    figures: dict[str, Any] = {"db": db, "load_before": loadavg(), "data_dir": str(data_dir), "requests": requests}
    failed = True
    try:
        with fresh_database(db, data_dir) as (url, migrate_s):
            figures["migrate_s"] = round(migrate_s, 1)
            figures["seed"] = seeded = seed(url, open_tasks=open_tasks, closed_tasks=closed_tasks, rng=rng)
            figures["db_bytes"] = database_size_bytes(url)
            staff, role = seeded["staff_user"], seeded["staff_role"]
            principals = {f"staff {staff} ({role})": Principal(name=staff, roles=frozenset({role})),
                          f"manager {MANAGER} (operations)": Principal(name=MANAGER, roles=frozenset({"operations"}))}
            figures["inbox_engine"] = time_inbox_engine(url, principals, requests=requests)
            # Four series of claims below, then one per variant of bench.db_settings (3 + 3 + 2).
            tasks = pick_open_tasks(url, rng=rng, count=12 * requests)
            share = len(tasks) // 12
            setting_chunks = [tasks[i * share:(i + 1) * share] for i in range(4, 12)]
            approval = next((t for t in tasks if t.kind == "approval"), None)
            figures["explain"] = explain_paths(url, principals, approval)
            with api_service(url, data_dir, env or {}) as api:
                base_url = api.health_url.removesuffix("/health")
                clients = {who: httpx.Client(base_url=base_url, timeout=60, headers={
                    "Authorization": f"Bearer {seeded['tokens'][p.name]}"}) for who, p in principals.items()}
                try:
                    figures["inbox_http"] = time_inbox_http(clients, requests=requests, depth=depth)
                finally:
                    for http in clients.values():
                        http.close()
                figures["http"] = time_claim_complete_http(base_url, seeded["tokens"], tasks[:share])
                figures["http_claims"] = time_claims_http(base_url, seeded["tokens"], tasks[share:2 * share])
            figures["engine"] = time_engine_claims(url, tasks[2 * share:3 * share])
            figures["raw"] = time_raw_claims(url, tasks[3 * share:4 * share])
            figures["settings"] = compare_settings(url, setting_chunks)
            figures["queued_resumes"] = _queued_resumes(url)
            figures["probe"] = time_health_probe()
            figures["db_bytes_after"] = database_size_bytes(url)
        failed = False
    finally:
        logs = log_problems(data_dir / "logs")
        figures["logs"] = {name: {k: r[k] for k in ("errors", "warnings")} for name, r in logs.items()}
        figures["log_samples"] = {name: r["samples"] for name, r in logs.items() if r["samples"]}
        figures["first_errors"] = {name: r["first_error_context"] for name, r in logs.items() if r["first_error_context"]}
        if keep_data or failed or figures["first_errors"]:
            print(f"[bench] data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    figures["seed"].pop("tokens")
    return figures


# --------------------------------------------------------------------------- the report


def _ms(summary: dict[str, float], keys: tuple[str, ...] = ("p50", "p95", "p99", "max")) -> str:
    if not summary.get("n"):
        return "—"
    return " · ".join(f"{k} {summary[k]:.1f}" for k in keys) + f" ms (n={summary['n']})"


def _goal(value: float, limit: float, *, below: bool = True) -> str:
    return "met" if (value < limit if below else value >= limit) else "**missed**"


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows."""
    seeded, counts = figures["seed"], figures["seed"]["counts"]
    http, claims, engine, raw = figures["http"], figures["http_claims"], figures["engine"], figures["raw"]
    inbox_p95 = max((s["p95"] for name, s in figures["inbox_http"].items() if s.get("n") and "/me" not in name), default=0.0)
    engine_ratio = engine["claims_per_s"] / raw["claims_per_s"] if raw["claims_per_s"] else 0.0
    http_ratio = claims["claims_per_s"] / raw["claims_per_s"] if raw["claims_per_s"] else 0.0
    rows = [
        ("tasks: open / claimed / completed", f"{counts.get('open', 0)} / {counts.get('claimed', 0)} / {counts.get('completed', 0)}"),
        ("process instances / audit events", f"{counts['rows_process_instances']} / {counts['rows_audit_events']}"),
        ("active tasks by role", ", ".join(f"{r} {n}" for r, n in sorted(seeded["active_by_role"].items()))),
        ("database size after seeding → after the run",
         f"{figures['db_bytes'] / 2**20:.1f} → {figures['db_bytes_after'] / 2**20:.1f} MB"),
        ("migrate / seed (bulk core inserts) / VACUUM ANALYZE (PostgreSQL)",
         f"{figures['migrate_s']} s / {seeded['seed_s']} s ({seeded['rows_per_s']} rows/s; inserts {seeded['insert_s']} s)"
         f" / {seeded['vacuum_s']} s"),
        *[(name if name.startswith("GET") else f"GET /tasks: {name}", _ms(s)) for name, s in figures["inbox_http"].items()],
        *[(f"list_inbox without HTTP: {name}", _ms(s)) for name, s in figures["inbox_engine"].items()],
        ("POST /tasks/{id}/claim (after the previous complete on the connection)", _ms(http["claim"])),
        ("POST /tasks/{id}/complete", _ms(http["complete"])),
        ("claim + complete (pair)", _ms(http["pair"])),
        *[(f"… pair, {kind} tasks", _ms(summary)) for kind, summary in http["pair_by_kind"].items()],
        ("claim/complete failures", str(len(http["failures"])) + (f" (first: {http['failures'][0]})" if http["failures"] else "")),
        ("POST /tasks/{id}/claim alone (claims only on the connection)", _ms(claims["latency"])
         + (f", {claims['failures']} failed" if claims["failures"] else "")),
        ("engine claim_task (session_scope per claim)", _ms(engine["latency"])),
        *[(f"… engine claim, {kind} tasks", _ms(summary)) for kind, summary in engine["by_kind"].items()],
        ("raw SQL compare-and-set + commit per claim", _ms(raw["latency"]) + (f", {raw['lost']} lost" if raw["lost"] else "")),
        ("claims/s: HTTP claim / engine / raw SQL",
         " / ".join(f"{part['claims_per_s']:.0f}" for part in (claims, engine, raw))),
        ("engine / raw; HTTP / raw", f"{engine_ratio:.0%}; {http_ratio:.0%}"),
        ("goal inbox p95 < 20 ms (worst series)", f"{inbox_p95:.1f} ms: {_goal(inbox_p95, 20)}"),
        ("goal claim+complete p99 < 20 ms", f"{http['pair'].get('p99', 0):.1f} ms: {_goal(http['pair'].get('p99', 0), 20)}"),
        ("goal engine claims ≥ 50 % of raw", f"{engine_ratio:.0%}: {_goal(engine_ratio, 0.5, below=False)}"),
        *db_settings.rows(figures.get("settings", {})),
        ("resumes left queued (Prefect down) / of which delivery was attempted", "{} / {}".format(*figures["queued_resumes"])),
        *[(f"Prefect health probe, nothing listening: {name}", _ms(s, ("p50", "max"))) for name, s in figures["probe"].items()],
        ("log lines ERROR / WARNING", ", ".join(f"{n}: {r['errors']}/{r['warnings']}" for n, r in figures["logs"].items()) or "none"),
    ]
    return rows


def plan_notes(figures: dict[str, Any]) -> list[str]:
    """The plans as RESULTS.md notes."""
    kind = "EXPLAIN QUERY PLAN" if figures["db"] == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS)"
    return [f"{kind}, {name}: `" + " ⏎ ".join(line.strip() for line in plan) + "`" for name, plan in figures["explain"].items()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.inbox_latency", description=__doc__.split("\n\n")[0])
    add_common_options(parser)  # --prefect-db does not apply: this benchmark runs no Prefect server
    parser.add_argument("--open", type=int, default=100_000, help="open or claimed tasks to seed")
    parser.add_argument("--closed", type=int, default=1_000_000, help="completed tasks to seed")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per series (and claims per loop)")
    parser.add_argument("--depth", type=int, default=10, help="the later page is this many pages in, via the cursor")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    figures = run(args.db, open_tasks=args.open, closed_tasks=args.closed, requests=args.requests, depth=args.depth,
                  seed_value=args.seed, env=env, keep_data=args.keep)
    rows = table(figures)
    print_report(rows, figures)
    for name, plan in figures["explain"].items():
        print(f"--- plan, {name}")
        for line in plan:
            print("   ", line)
    if not args.no_record:
        notes = plan_notes(figures) + [f"env overrides of the API: {env or 'none'}; data seed {args.seed}"]
        append_results("Inbox latency", db=args.db, rows=rows, notes=notes, load_before=figures["load_before"], prefect_db=None)
    return figures


if __name__ == "__main__":
    main()
