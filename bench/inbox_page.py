"""One inbox page of the manager, over HTTP and through list_inbox, on a database seeded once and kept.

`python -m bench.inbox_latency --only-page at_risk` (issue 21 §7): GET /tasks of the manager's page
`--depth + 1` (via the cursor) and the same page through list_inbox in a read_scope, as the route
reads it, timed in alternating rounds in one run so that the load of a shared machine falls on both;
GET /me (authentication alone) beside them. `--keep-db` keeps the seeded PostgreSQL database and
`--reuse-db URL` times on it again without seeding (before/after runs on the same rows).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.harness.databases import fresh_database, migrate
from bench.harness.logs import finish_data_dir, log_figures, log_problems, make_data_dir
from bench.harness.sampling import cpu_seconds, loadavg
from bench.harness.seeding import MANAGER, seed
from bench.harness.timing import format_summary, summarize, time_calls

ROUNDS = 4


def manager_token(url: str) -> str:
    """Issue a new token for the seeded manager (a reused database keeps only tokens' hashes)."""
    from sqlalchemy import select

    from ecomflow.engine.db.models import User
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.people.users import issue_token

    with session_scope(url) as session:
        user = session.scalar(select(User).where(User.name == MANAGER))
        if user is None:
            raise SystemExit(f"{url} has no user {MANAGER}: seed it with bench.inbox_latency --keep-db first")
        return issue_token(session, user=user)


@contextmanager
def _database(db: str, data_dir: Path, *, reuse: str | None, keep: bool, seeding: dict[str, Any]) -> Iterator[str]:
    """Yield a seeded database: the one to reuse, or a fresh one seeded now."""
    if reuse:
        yield reuse
        return
    with fresh_database(db, data_dir, keep=keep) as url:
        migrate(url)
        seed(url, rng=random.Random(seeding["seed_value"]), **seeding["counts"])
        yield url


def time_page(
    api_url: str, api_pid: int, db_url: str, token: str, *, sort: str, depth: int, requests: int
) -> dict[str, Any]:
    """Time the manager's page over HTTP, through list_inbox and GET /me, in ROUNDS alternating rounds.

    Beside each HTTP series, the API process's CPU per request: unlike latencies, it hardly moves with
    the load of other work on the machine.
    """
    from bench.inbox_latency import _get_page, _later_cursor
    from ecomflow.engine.db.sessions import read_scope
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox

    principal = Principal(name=MANAGER, roles=frozenset({"operations"}))
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        cursor = _later_cursor(http, {"sort": sort}, depth)
        params = {"sort": sort, **({"cursor": cursor} if cursor else {})}
        filters = InboxFilter(sort=sort, cursor=cursor)

        def engine_page() -> None:
            with read_scope(db_url) as session:
                list_inbox(session, principal=principal, filters=filters)

        calls = {
            "GET /tasks": partial(_get_page, http, params),
            "list_inbox (read_scope, as the route)": engine_page,
            "GET /me": lambda: http.get("/me").raise_for_status(),
        }
        for call in calls.values():  # warm the pools and caches
            time_calls(call, 3, warmup=0)
        durations: dict[str, list[float]] = {name: [] for name in calls}
        api_cpu = dict.fromkeys(calls, 0.0)
        per_round = max(1, requests // ROUNDS)
        for _ in range(ROUNDS):
            for name, call in calls.items():
                before = cpu_seconds(api_pid)
                durations[name] += time_calls(call, per_round, warmup=0)
                api_cpu[name] += cpu_seconds(api_pid) - before
    label = f"manager · sort={sort} · page {depth + 1}" + (" (cursor)" if cursor else " (no cursor: fewer pages)")
    return {
        "page": label,
        "series": {name: summarize(d, scale=1000) for name, d in durations.items()},
        # list_inbox runs in this process: the API's CPU meanwhile is only its idle ticking.
        "api_cpu_ms": {name: api_cpu[name] * 1000 / len(durations[name]) for name in calls if name.startswith("GET")},
    }


def run_page(
    db: str,
    *,
    sort: str,
    depth: int,
    requests: int,
    seeding: dict[str, Any],
    reuse: str | None = None,
    keep_db: bool = False,
    env: dict[str, str] | None = None,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Seed (or reuse) the database, start the API on it and time the page; return the figures."""
    from bench.inbox_latency import api_service
    from ecomflow.engine.db.sessions import get_engine

    data_dir = make_data_dir(f"ecomflow-bench-inbox-page-{db}-")
    figures: dict[str, Any] = {"load_before": loadavg(), "reused": reuse, "data_dir": str(data_dir)}
    failed = True
    try:
        with _database(db, data_dir, reuse=reuse, keep=keep_db, seeding=seeding) as url:
            figures["url"] = url
            token = manager_token(url)
            with api_service(url, data_dir, env or {}) as api:
                api_url = api.health_url.removesuffix("/health")
                figures |= time_page(api_url, api.process.pid, url, token, sort=sort, depth=depth, requests=requests)
            if reuse:  # fresh_database disposes the pool of its own database
                get_engine(url).dispose()
        failed = False
    finally:
        figures["load_after"] = loadavg()
        figures |= log_figures(log_problems(data_dir / "logs"))
        finish_data_dir(data_dir, keep=keep_data or failed or bool(figures["first_errors"]))
    return figures


def print_page(figures: dict[str, Any]) -> None:
    """Print the page's series and the load around them."""
    print(f"{figures['page']} · load before {figures['load_before']} · after {figures['load_after']}")
    for name, summary in figures["series"].items():
        print(f"  {name}: {format_summary(summary, unit='ms')}")
    for name, cpu_ms in figures["api_cpu_ms"].items():
        print(f"  API process CPU per {name}: {cpu_ms:.2f} ms")
