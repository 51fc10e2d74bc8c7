"""Inbox and claim/complete latency on a big database (benchmark e).

Seeds a fresh, migrated database with bulk inserts (process instances over the processes of
flows.yaml, N open or claimed tasks, M completed ones, their audit events, users per role), starts
the real API (`ecomflow api`, no Prefect server: a complete's immediate delivery finds Prefect down
and leaves the resume queued) and times over HTTP: GET /tasks of a staff user with one role and of
a manager (first page and a later page via cursor, sorts due, priority and at_risk), then POST claim +
complete of open tasks. Without HTTP it times the same inbox query, `claim_task` in a `session_scope`
loop and a raw SQL compare-and-set loop on the same database (the claims' baseline), prints the plans
of the inbox query and of a claim's SELECTs (before/after evidence for index changes), and compares
the connection settings of engine/db.py with their alternatives (bench.db_settings).
Goals: inbox p95 < 20 ms, claim+complete p99 < 20 ms, engine claims ≥ 50 % of raw.

    cd /work/main && .venv/bin/python -m bench.inbox_latency --db sqlite --open 100000 --closed 1000000 [--record]

One page alone, before/after on the same rows (bench/inbox_page.py):

    .venv/bin/python -m bench.inbox_latency --db postgresql --only-page at_risk --keep-db   # prints the URL
    .venv/bin/python -m bench.inbox_latency --db postgresql --only-page at_risk --reuse-db URL
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import db_settings
from bench.harness.databases import database_size_bytes, fresh_database, migrate
from bench.harness.logs import finish_data_dir, log_counts_text, log_figures, log_problems, make_data_dir
from bench.harness.options import add_common_options, env_overrides, setting_of
from bench.harness.query_plans import captured_selects, explain
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_report
from bench.harness.sampling import cpu_seconds, loadavg
from bench.harness.seeding import MANAGER, OpenTask, pick_open_tasks, seed
from bench.harness.services import QUIET_PREFECT_ENV, IsolatedService, free_port
from bench.harness.timing import format_summary, rate, summarize, time_calls

SORTS = ("due", "priority", "at_risk")
# Claim series: HTTP claim + complete, HTTP claim alone, engine, raw SQL; then bench.db_settings' variants.
CLAIM_SERIES = 4
GOAL_MS = 20.0
GOAL_ENGINE_SHARE = 0.5
GOAL_HTTP_SHARE = 0.5  # HTTP claims/s against the engine's, in the same run (issue 21 §6)
ME_SERIES = "GET /me (authentication only)"


def latency(durations: list[float]) -> dict[str, float]:
    """Return the summary of durations in milliseconds."""
    return summarize(durations, scale=1000)


# --------------------------------------------------------------------------- measuring


def _get_page(http: httpx.Client, params: dict[str, Any]) -> dict[str, Any]:
    """GET one inbox page; raise on anything but 200."""
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
    series = {ME_SERIES: latency(time_calls(lambda: me.get("/me").raise_for_status(), requests))}
    for who, http in clients.items():
        for sort in SORTS:
            params = {"sort": sort}
            series[f"{who} · sort={sort} · first page"] = latency(
                time_calls(partial(_get_page, http, params), requests)
            )
            cursor = _later_cursor(http, params, depth)
            later = {**params, "cursor": cursor}
            series[f"{who} · sort={sort} · page {depth + 1} (cursor)"] = (
                latency(time_calls(partial(_get_page, http, later), requests)) if cursor else {"n": 0}
            )
    return series


def time_inbox_engine(url: str, principals: dict[str, Any], *, requests: int) -> dict[str, dict[str, float]]:
    """Time list_inbox (first page, sort due) without HTTP: the database and ORM part of GET /tasks."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox

    def page(principal: Any) -> None:
        with session_scope(url) as session:
            list_inbox(session, principal=principal, filters=InboxFilter(sort="due"))

    return {
        f"{who} · sort=due · first page": latency(time_calls(lambda p=p: page(p), requests))
        for who, p in principals.items()
    }


def _by_kind(durations: list[float], tasks: list[OpenTask]) -> dict[str, dict[str, float]]:
    """Split latencies into approval tasks (they run the four-eyes query) and the others."""
    split: dict[str, list[float]] = {"approval": [], "other": []}
    for duration, task in zip(durations, tasks, strict=True):
        split["approval" if task.kind == "approval" else "other"].append(duration)
    return {kind: latency(values) for kind, values in split.items()}


def _clients(base_url: str, tokens: dict[str, str], tasks: list[OpenTask]) -> dict[str, httpx.Client]:
    """One keep-alive client per role, as the bench user of that role."""
    return {
        t.role: httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {tokens[f'bench-{t.role}']}"}, timeout=120
        )
        for t in tasks
    }


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
    return {"latency": latency(durations), "claims_per_s": rate(durations), "failures": failures}


def time_claim_complete_http(base_url: str, tokens: dict[str, str], tasks: list[OpenTask]) -> dict[str, Any]:
    """Claim and complete each task over HTTP with valid form data; time each call and the pair."""
    from ecomflow.demo import uploader
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.sample_data import sample_object

    definitions, clients = get_definitions(), _clients(base_url, tokens, tasks)
    claims, completes, pairs, done_tasks, failures = [], [], [], [], []
    try:
        for task in tasks:
            http = clients[task.role]
            # File fields take attachments uploaded before the timed pair, as a browser uploads on drop.
            schema = definitions.process(task.process).step(task.step).form.json_schema
            data = sample_object(schema, attach=uploader(http))
            started = time.perf_counter()
            claimed = http.post(f"/tasks/{task.id}/claim")
            middle = time.perf_counter()
            done = (
                http.post(f"/tasks/{task.id}/complete", json={"data": data}) if claimed.status_code == 200 else claimed
            )
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
    return {
        "claim": latency(claims),
        "complete": latency(completes),
        "pair": latency(pairs),
        "pair_by_kind": _by_kind(pairs, done_tasks),
        "failures": failures,
    }


def time_engine_claims(url: str, tasks: list[OpenTask]) -> dict[str, Any]:
    """claim_task in a session_scope per claim, as the API route does, without HTTP."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.tasks.actions import claim_task

    durations, cpu_before = [], time.process_time()
    for task in tasks:
        principal = Principal(name=f"bench-{task.role}", roles=frozenset({task.role}))
        started = time.perf_counter()
        with session_scope(url) as session:
            claim_task(session, task_id=task.id, principal=principal)
        durations.append(time.perf_counter() - started)
    return {
        "latency": latency(durations),
        "by_kind": _by_kind(durations, tasks),
        "claims_per_s": rate(durations),
        # This process's CPU (all its threads, as the API process's figure counts all of the API's).
        "cpu_ms": (time.process_time() - cpu_before) * 1000 / len(tasks) if tasks else 0.0,
    }


def time_raw_claims(url: str, tasks: list[OpenTask]) -> dict[str, Any]:
    """The floor: one compare-and-set UPDATE and a commit per claim, straight on the DBAPI connection."""
    sql = (
        "UPDATE human_tasks SET state='claimed', assignee={p}, version=version+1 "
        "WHERE id={p} AND state='open' AND version={p}"
    )
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        # The same settings and transactions engine.db gives its connections.
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        begin, commit, sql = (
            (lambda: conn.execute("BEGIN IMMEDIATE")),
            (lambda: conn.execute("COMMIT")),
            sql.format(p="?"),
        )
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
    return {"latency": latency(durations), "claims_per_s": rate(durations), "lost": lost}


def explain_paths(url: str, principals: dict[str, Any], approval: OpenTask | None) -> dict[str, list[str]]:
    """Plans of the inbox query (each user and sort) and of the SELECTs a claim of an approval task sends."""
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.tasks.actions import claim_task
    from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox

    plans = {}
    for who, principal in principals.items():
        for sort in SORTS:
            selects = captured_selects(
                url, lambda s, p=principal, o=sort: list_inbox(s, principal=p, filters=InboxFilter(sort=o))
            )
            # The index-ordered sorts send one small SELECT per visibility branch, state and due phase, then
            # one by id: the first two and the last show their plans.
            for number, (statement, parameters) in enumerate(selects, 1):
                if 2 < number < len(selects):
                    continue
                label = f"inbox, {who} · sort={sort}" + (
                    f" · SELECT {number}/{len(selects)}" if len(selects) > 1 else ""
                )
                plans[label] = explain(url, statement, parameters)
    if approval is not None:
        claimer = Principal(name=f"bench-{approval.role}", roles=frozenset({approval.role}))
        selects = captured_selects(url, lambda s: claim_task(s, task_id=approval.id, principal=claimer))
        for number, (statement, parameters) in enumerate(selects, 1):
            where = " ".join(statement.split("WHERE", 1)[-1].split())
            plans[f"claim of an approval task, SELECT {number}: WHERE {where[:160]}"] = explain(
                url, statement, parameters
            )
    return plans


@contextmanager
def api_service(url: str, data_dir: Path, env: dict[str, str]) -> Iterator[IsolatedService]:
    """Run `ecomflow api` on the database; Prefect points at a closed port, as when Prefect is down."""
    port = free_port()
    settings = {
        "ECOMFLOW_DATABASE_URL": url,
        "ECOMFLOW_DATA_DIR": str(data_dir),
        "ECOMFLOW_API_HOST": "127.0.0.1",
        "ECOMFLOW_API_PORT": str(port),
        "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
        "PREFECT_HOME": str(data_dir / "prefect-home"),
        **QUIET_PREFECT_ENV,
        **env,
    }
    api = IsolatedService(
        name="api",
        argv=[sys.executable, "-m", "ecomflow.cli", "api"],
        env=settings,
        health_url=f"http://127.0.0.1:{port}/health",
        log_path=data_dir / "logs" / "api.log",
    )
    api.start()
    try:
        api.wait_healthy(timeout=120)
        yield api
    finally:
        api.stop(timeout=20)


def _queued_resumes(url: str) -> tuple[int, int]:
    """Return the resume messages never delivered after the run, and how many of them delivery was tried on."""
    from sqlalchemy import func, select

    from ecomflow.engine.db.models import OutboxMessage
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(url) as session:
        waiting = OutboxMessage.delivered_at.is_(None)
        count = session.scalar(select(func.count()).select_from(OutboxMessage).where(waiting))
        tried = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(waiting, OutboxMessage.attempts > 0)
        )
    return count, tried


def time_health_probe(n: int = 9) -> dict[str, dict[str, float]]:
    """Time the immediate delivery's Prefect health probe (after each complete's response) when nothing listens.

    api_is_healthy calls httpx.get, which builds a new client (and TLS context) per call; a shared client does not.
    """
    url = f"http://127.0.0.1:{free_port()}/api/health"

    def probe(get: Callable[..., Any]) -> None:
        with suppress(httpx.HTTPError):
            get(url, timeout=2)

    with httpx.Client() as shared:
        return {
            "new client per call (as api_is_healthy)": latency(time_calls(lambda: probe(httpx.get), n, warmup=1)),
            "one shared client": latency(time_calls(lambda: probe(shared.get), n, warmup=1)),
        }


def _time_over_http(
    url: str,
    data_dir: Path,
    env: dict[str, str],
    seeded: dict[str, Any],
    principals: dict[str, Any],
    tasks: list[OpenTask],
    *,
    share: int,
    requests: int,
    depth: int,
) -> dict[str, Any]:
    """Start the API on the database and time the inbox pages, claim + complete pairs and claims over HTTP."""
    figures: dict[str, Any] = {}
    with api_service(url, data_dir, env) as api:
        base_url = api.health_url.removesuffix("/health")
        clients = {
            who: httpx.Client(
                base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {seeded['tokens'][p.name]}"}
            )
            for who, p in principals.items()
        }
        try:
            figures["inbox_http"] = time_inbox_http(clients, requests=requests, depth=depth)
        finally:
            for http in clients.values():
                http.close()
        figures["http"] = time_claim_complete_http(base_url, seeded["tokens"], tasks[:share])
        # CPU per claim next to the rates: on a shared machine the rates move with the load, CPU much less.
        cpu_before = cpu_seconds(api.process.pid)
        figures["http_claims"] = time_claims_http(base_url, seeded["tokens"], tasks[share : 2 * share])
        figures["http_claims"]["cpu_ms"] = (cpu_seconds(api.process.pid) - cpu_before) * 1000 / share
    return figures


def run(
    db: str,
    *,
    open_tasks: int,
    closed_tasks: int,
    requests: int,
    depth: int,
    seed_value: int,
    env: dict[str, str] | None = None,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Make and seed the database, measure, clean up; return the figures."""
    from ecomflow.engine.people.principals import Principal

    rng = random.Random(seed_value)
    data_dir = make_data_dir(f"ecomflow-bench-inbox-{db}-")
    figures: dict[str, Any] = {"db": db, "load_before": loadavg(), "data_dir": str(data_dir), "requests": requests}
    failed = True
    try:
        with fresh_database(db, data_dir) as url:
            figures["migrate_s"] = round(migrate(url), 1)
            figures["seed"] = seeded = seed(url, open_tasks=open_tasks, closed_tasks=closed_tasks, rng=rng)
            figures["db_bytes"] = database_size_bytes(url)
            staff, role = seeded["staff_user"], seeded["staff_role"]
            principals = {
                f"staff {staff} ({role})": Principal(name=staff, roles=frozenset({role})),
                f"manager {MANAGER} (operations)": Principal(name=MANAGER, roles=frozenset({"operations"})),
            }
            figures["inbox_engine"] = time_inbox_engine(url, principals, requests=requests)
            chunks = CLAIM_SERIES + db_settings.CHUNKS["sqlite"]
            tasks = pick_open_tasks(url, rng=rng, count=chunks * requests)
            share = len(tasks) // chunks
            approval = next((t for t in tasks if t.kind == "approval"), None)
            figures["explain"] = explain_paths(url, principals, approval)
            figures |= _time_over_http(
                url, data_dir, env or {}, seeded, principals, tasks, share=share, requests=requests, depth=depth
            )
            figures["engine"] = time_engine_claims(url, tasks[2 * share : 3 * share])
            figures["raw"] = time_raw_claims(url, tasks[3 * share : 4 * share])
            figures["settings"] = db_settings.compare(
                url, [tasks[i * share : (i + 1) * share] for i in range(CLAIM_SERIES, chunks)]
            )
            figures["queued_resumes"] = _queued_resumes(url)
            figures["probe"] = time_health_probe()
            figures["db_bytes_after"] = database_size_bytes(url)
        failed = False
    finally:
        figures |= log_figures(log_problems(data_dir / "logs"))
        finish_data_dir(data_dir, keep=keep_data or failed or bool(figures["first_errors"]))
    figures["seed"].pop("tokens")
    return figures


# --------------------------------------------------------------------------- the report


def _ms(summary: dict[str, float], keys: tuple[str, ...] = ("p50", "p95", "p99", "max")) -> str:
    return format_summary(summary, unit="ms", keys=keys)


def _goal(value: float, limit: float, *, below: bool = True) -> str:
    return "met" if (value < limit if below else value >= limit) else "**missed**"


def worst_inbox_series(figures: dict[str, Any]) -> tuple[str, float]:
    """Return the GET /tasks series with the highest p95 (GET /me aside), and that p95 in ms."""
    series = [(name, s["p95"]) for name, s in figures["inbox_http"].items() if s.get("n") and "/me" not in name]
    return max(series, key=lambda item: item[1], default=("none", 0.0))


def claim_ratios(figures: dict[str, Any]) -> tuple[float, float]:
    """Return engine claims/s and HTTP claims/s as shares of the raw SQL loop's."""
    raw = figures["raw"]["claims_per_s"]
    return (
        (figures["engine"]["claims_per_s"] / raw, figures["http_claims"]["claims_per_s"] / raw) if raw else (0.0, 0.0)
    )


def _cpu_per_claim(figures: dict[str, Any]) -> str:
    return f"{figures['http_claims']['cpu_ms']:.2f} / {figures['engine']['cpu_ms']:.2f}"


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows."""
    seeded, counts = figures["seed"], figures["seed"]["counts"]
    http, claims, engine, raw = figures["http"], figures["http_claims"], figures["engine"], figures["raw"]
    _, inbox_p95 = worst_inbox_series(figures)
    engine_ratio, http_ratio = claim_ratios(figures)
    return [
        (
            "tasks: open / claimed / completed",
            f"{counts.get('open', 0)} / {counts.get('claimed', 0)} / {counts.get('completed', 0)}",
        ),
        ("process instances / audit events", f"{counts['rows_process_instances']} / {counts['rows_audit_events']}"),
        ("active tasks by role", ", ".join(f"{r} {n}" for r, n in sorted(seeded["active_by_role"].items()))),
        (
            "database size after seeding → after the run",
            f"{figures['db_bytes'] / 2**20:.1f} → {figures['db_bytes_after'] / 2**20:.1f} MB",
        ),
        (
            "migrate / seed (bulk core inserts) / VACUUM ANALYZE (PostgreSQL)",
            f"{figures['migrate_s']} s / {seeded['seed_s']} s "
            f"({seeded['rows_per_s']} rows/s; inserts {seeded['insert_s']} s) / {seeded['vacuum_s']} s",
        ),
        *[
            (name if name.startswith("GET") else f"GET /tasks: {name}", _ms(s))
            for name, s in figures["inbox_http"].items()
        ],
        *[(f"list_inbox without HTTP: {name}", _ms(s)) for name, s in figures["inbox_engine"].items()],
        ("POST /tasks/{id}/claim (after the previous complete on the connection)", _ms(http["claim"])),
        ("POST /tasks/{id}/complete", _ms(http["complete"])),
        ("claim + complete (pair)", _ms(http["pair"])),
        *[(f"… pair, {kind} tasks", _ms(summary)) for kind, summary in http["pair_by_kind"].items()],
        (
            "claim/complete failures",
            str(len(http["failures"])) + (f" (first: {http['failures'][0]})" if http["failures"] else ""),
        ),
        (
            "POST /tasks/{id}/claim alone (claims only on the connection)",
            _ms(claims["latency"]) + (f", {claims['failures']} failed" if claims["failures"] else ""),
        ),
        ("engine claim_task (session_scope per claim)", _ms(engine["latency"])),
        *[(f"… engine claim, {kind} tasks", _ms(summary)) for kind, summary in engine["by_kind"].items()],
        (
            "raw SQL compare-and-set + commit per claim",
            _ms(raw["latency"]) + (f", {raw['lost']} lost" if raw["lost"] else ""),
        ),
        (
            "claims/s: HTTP claim / engine / raw SQL",
            " / ".join(f"{part['claims_per_s']:.0f}" for part in (claims, engine, raw)),
        ),
        ("CPU ms per claim: API process (HTTP claim) / engine (claim_task)", _cpu_per_claim(figures)),
        (
            "engine / raw; HTTP / raw; HTTP / engine",
            f"{engine_ratio:.0%}; {http_ratio:.0%}; {http_ratio / engine_ratio if engine_ratio else 0:.0%}",
        ),
        ("goal inbox p95 < 20 ms (worst series)", f"{inbox_p95:.1f} ms: {_goal(inbox_p95, GOAL_MS)}"),
        (
            "goal claim+complete p99 < 20 ms",
            f"{http['pair'].get('p99', 0):.1f} ms: {_goal(http['pair'].get('p99', 0), GOAL_MS)}",
        ),
        (
            "goal engine claims ≥ 50 % of raw",
            f"{engine_ratio:.0%}: {_goal(engine_ratio, GOAL_ENGINE_SHARE, below=False)}",
        ),
        *db_settings.rows(figures.get("settings", {})),
        (
            "resumes left queued (Prefect down) / of which delivery was attempted",
            "{} / {}".format(*figures["queued_resumes"]),
        ),
        *[
            (f"Prefect health probe, nothing listening: {name}", _ms(s, ("p50", "max")))
            for name, s in figures["probe"].items()
        ],
        ("log lines ERROR / WARNING", log_counts_text(figures["logs"])),
    ]


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a run: inbox and claim figures, the goals, and claims against raw SQL."""
    counts, http = figures["seed"]["counts"], figures["http"]
    worst, inbox_p95 = worst_inbox_series(figures)
    engine_ratio, http_ratio = claim_ratios(figures)
    http_vs_engine = http_ratio / engine_ratio if engine_ratio else 0.0
    goals = [
        _goal(inbox_p95, GOAL_MS),
        _goal(http["pair"].get("p99", 0), GOAL_MS),
        _goal(engine_ratio, GOAL_ENGINE_SHARE, below=False),
        _goal(http_vs_engine, GOAL_HTTP_SHARE, below=False),
    ]
    staff_due = {
        name: s
        for name, s in figures["inbox_http"].items()
        if name.startswith("staff") and "sort=due · first page" in name
    }
    return Entry(
        benchmark="inbox_latency",
        setting=setting,
        ratio=(
            f"against a raw SQL compare-and-set: engine claims {engine_ratio:.0%}, "
            f"HTTP claims {http_ratio:.0%} of its claims/s; HTTP claims {http_vs_engine:.0%} of the engine's"
        ),
        rows=[
            (
                "tasks open + claimed / completed",
                f"{counts.get('open', 0) + counts.get('claimed', 0)} / {counts.get('completed', 0)}",
            ),
            ("GET /tasks, worst p95 of the sorts and pages", f"{inbox_p95:.1f} ms ({worst})"),
            ("GET /me (authentication only)", _ms(figures["inbox_http"][ME_SERIES])),
            *[(f"GET /tasks: {name}", _ms(s)) for name, s in staff_due.items()],
            *[
                (f"list_inbox without HTTP: {name}", _ms(s))
                for name, s in figures["inbox_engine"].items()
                if name.startswith("staff")
            ],
            ("claim + complete (pair) over HTTP", _ms(http["pair"])),
            (
                "claims/s: HTTP claim / engine / raw SQL",
                " / ".join(f"{figures[part]['claims_per_s']:.0f}" for part in ("http_claims", "engine", "raw")),
            ),
            ("CPU ms per claim: API process (HTTP claim) / engine (claim_task)", _cpu_per_claim(figures)),
            (
                "goals: inbox p95 < 20 ms / pair p99 < 20 ms / engine ≥ 50 % of raw / HTTP ≥ 50 % of engine",
                " / ".join(goals),
            ),
        ],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its figures and plans and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.inbox_latency", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False)
    parser.add_argument("--open", type=int, default=100_000, help="open or claimed tasks to seed")
    parser.add_argument("--closed", type=int, default=1_000_000, help="completed tasks to seed")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per series (and claims per loop)")
    parser.add_argument("--depth", type=int, default=10, help="the later page is this many pages in, via the cursor")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument(
        "--only-page",
        choices=SORTS,
        help="time only the manager's page of this sort, --depth pages in: GET /tasks beside list_inbox (no record)",
    )
    parser.add_argument("--keep-db", action="store_true", help="with --only-page: keep the seeded PostgreSQL database")
    parser.add_argument("--reuse-db", metavar="URL", help="with --only-page: time on this kept database, no seeding")
    args = parser.parse_args(argv)
    env = env_overrides(args)
    if args.only_page:
        if args.record:
            parser.error("--only-page times one page for a comparison; it records nothing")
        return _only_page(args, env)
    if args.keep_db or args.reuse_db:
        parser.error("--keep-db and --reuse-db go with --only-page")
    figures = run(
        args.db,
        open_tasks=args.open,
        closed_tasks=args.closed,
        requests=args.requests,
        depth=args.depth,
        seed_value=args.seed,
        env=env,
        keep_data=args.keep,
    )
    print_report(table(figures), figures)
    for name, plan in figures["explain"].items():
        print(f"--- plan, {name}")
        for line in plan:
            print("   ", line)
    if args.record:
        # The settings' comparison runs no API, so the API's env overrides do not name its setting.
        made = (entry(figures, setting=setting_of(args)), db_settings.entry(figures["settings"], setting=args.db))
        for made_entry in made:
            record_run(made_entry, module="bench.inbox_latency", argv=argv, load_before=figures["load_before"])
    return figures


def _only_page(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from bench.inbox_page import print_page, run_page

    figures = run_page(
        args.db,
        sort=args.only_page,
        depth=args.depth,
        requests=args.requests,
        seeding={"seed_value": args.seed, "counts": {"open_tasks": args.open, "closed_tasks": args.closed}},
        reuse=args.reuse_db,
        keep_db=args.keep_db,
        env=env,
        keep_data=args.keep,
    )
    print_page(figures)
    return figures


if __name__ == "__main__":
    main()
