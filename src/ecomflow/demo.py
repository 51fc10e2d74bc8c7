"""`ecomflow demo`: a user per role, the sample catalogue, one instance of every process; --drive plays the staff."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import User
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.people.principals import SYSTEM
from ecomflow.engine.people.users import add_user, issue_token
from ecomflow.engine.shop.catalog import save_location
from ecomflow.engine.shop.catalog_import import check_file, import_rows
from ecomflow.flows import implemented_flows
from ecomflow.flows.quarterly_marketing_plan import quarter_end
from ecomflow.sample_data import Attach, sample_catalogue_path, sample_object
from ecomflow.sample_exports import write_export

SECOND_OF_EACH = "_2"  # a second user per role, for four-eyes approvals of that role's own work
TERMINAL = {"completed", "cancelled", "failed"}
# Pause after a round in which nobody had work: the next task is usually a flow step away (well under a second).
IDLE_PAUSE_SECONDS = 0.25


@dataclass
class DemoUser:
    name: str
    role: str
    token: str


def create_users() -> dict[str, list[DemoUser]]:
    """Create two users per role (or give existing demo users a fresh token)."""
    definitions = get_definitions()
    users: dict[str, list[DemoUser]] = {}
    with session_scope() as session:
        for role in definitions.roles:
            for suffix in ("", SECOND_OF_EACH):
                name = f"demo_{role}{suffix}"
                existing = session.scalar(select(User).where(User.name == name))
                if existing is None:
                    _, token = add_user(session, name=name, roles=[role], known_roles=definitions.roles)
                else:
                    token = issue_token(session, user=existing)
                users.setdefault(role, []).append(DemoUser(name=name, role=role, token=token))
    return users


# The sample catalogue's stock locations: the online warehouse and two stores (one stock for both channels).
DEMO_LOCATIONS = {
    "WH-ONLINE": ("线上仓 (嘉兴)", "warehouse"),
    "ST-SH01": ("上海南京路店", "store"),
    "ST-HZ01": ("杭州湖滨店", "store"),
}


def load_catalogue() -> tuple[int, int]:
    """Import the sample catalogue through the import path `ecomflow catalog import` uses; return products, variants."""
    path = sample_catalogue_path()
    with session_scope() as session:
        for code, (name, kind) in DEMO_LOCATIONS.items():
            save_location(session, code=code, name=name, kind=kind, actor=SYSTEM.name)
        checked = check_file(path, session=session)
        if checked.bad:
            raise RuntimeError(f"the sample catalogue has bad rows: {checked.bad}")
        imported = import_rows(session, checked, principal=SYSTEM, source=path.name)
    return imported.products, imported.variants


# The demo shop's Tmall exports: (kind, rows, seed). Orders of today, of yesterday and of the last quarter's closing
# days; refunds are asked 3 days and reviews written 5 days after their rows start, so they fall on the last days.
DEMO_EXPORTS = (("orders", 120, 1), ("orders", 120, 2), ("orders", 120, 5), ("refunds", 20, 3), ("reviews", 20, 4))


def previous_quarter(today: date) -> str:
    """Return the quarter before today's, e.g. 2026-Q3 on 2026-12-05: the demo's plan reviews it at once."""
    year, number = (today.year - 1, 4) if today.month <= 3 else (today.year, (today.month - 1) // 3)
    return f"{year}-Q{number}"


def _export_starts(now: datetime) -> list[datetime]:
    """When each of DEMO_EXPORTS' rows start, ~37 s apart: today's newest order is a minute old."""
    last_quarter_end = quarter_end(previous_quarter(now.date())).replace(tzinfo=None)
    return [
        now - timedelta(seconds=120 * 37 + 60),
        now - timedelta(days=1, seconds=120 * 37 + 60),
        last_quarter_end - timedelta(days=2),
        now - timedelta(days=4),
        now - timedelta(days=6),
    ]


def import_shop_data(api: str, importer: DemoUser, folder: Path, *, timezone: str) -> list[dict[str, Any]]:
    """Write sample Tmall exports and import them over HTTP as customer service does; return the import reports."""
    client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {importer.token}"}, timeout=120)
    now = datetime.now(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
    folder.mkdir(parents=True, exist_ok=True)
    reports = []
    for (kind, rows, seed), start in zip(DEMO_EXPORTS, _export_starts(now), strict=True):
        paths = write_export(kind, "tmall", folder / f"tmall-{kind}-{seed}.csv", count=rows, seed=seed, start=start)
        with ExitStack() as opened:
            files = {"file": (paths[0].name, opened.enter_context(paths[0].open("rb")))}
            if len(paths) > 1:
                files["lines_file"] = (paths[1].name, opened.enter_context(paths[1].open("rb")))
            response = client.post("/imports", data={"kind": kind, "platform": "tmall"}, files=files)
        if response.status_code != 201:
            raise RuntimeError(f"importing {paths[0].name} failed: {response.status_code} {response.text}")
        reports.append(response.json())
    return reports


# Started by the shop's data, not by a person: a wave starts one when it closes (the imported orders fill one).
STARTED_BY_WAVES = {"order_fulfilment"}


def start_every_process(api: str, starter: DemoUser) -> list[dict[str, Any]]:
    """Start one instance of every process over HTTP; return the instances."""
    client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {starter.token}"}, timeout=30)
    started = []
    implemented = set(implemented_flows())
    for process in client.get("/processes").raise_for_status().json():
        if process["key"] not in implemented or process["key"] in STARTED_BY_WAVES:
            continue
        params = sample_object(process["start_form"], attach=uploader(client))
        params.update(_start_overrides(process["key"], today=datetime.now(ZoneInfo(get_definitions().timezone)).date()))
        business_key = f"DEMO-{uuid.uuid4().hex[:8]}"
        response = client.post(
            f"/processes/{process['key']}/instances", json={"business_key": business_key, "params": params}
        )
        if response.status_code != 201:
            raise RuntimeError(f"starting {process['key']} failed: {response.status_code} {response.text}")
        started.append(response.json())
    return started


def uploader(client: httpx.Client) -> Attach:
    """Return a function that uploads a file as the client's user and gives its attachment id."""

    def attach(name: str, data: bytes) -> str:
        response = client.post("/attachments", files={"file": (name, data)})
        if response.status_code != 201:
            raise RuntimeError(f"uploading {name} failed: {response.status_code} {response.text}")
        return response.json()["id"]

    return attach


def _start_overrides(process: str, *, today: date) -> dict[str, Any]:
    """Start params that must tell a story rather than fill a schema."""
    return {
        "returns_exchange": {
            "kind": "return_refund",
            "cause": "no_reason",
            "category": "normal",
            "amount": 179,
            "reason": "尺码偏小",
        },
        "presales_order": {"customer": "顾客小王", "question": "这款T恤有白色M码吗？"},
        # The quarter just ended: its review (targets against the imported sales) is due at once.
        "quarterly_marketing_plan": {"quarter": previous_quarter(today)},
    }.get(process, {})


def drive(
    api: str, users: dict[str, list[DemoUser]], instance_ids: list[str], *, timeout: float = 600
) -> dict[str, str]:
    """Complete every open task as the right people until the demo's instances (and children) end."""
    clients = {
        user.name: httpx.Client(base_url=api, headers={"Authorization": f"Bearer {user.token}"}, timeout=30)
        for people in users.values()
        for user in people
    }
    manager = clients[users["operations"][0].name]
    tracked = set(instance_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {i: manager.get(f"/instances/{i}").json() for i in tracked}
        for detail in states.values():
            tracked |= {child["id"] for child in detail["children"]}
        if all(s["state"] in TERMINAL for s in states.values()) and len(states) == len(tracked):
            return {i: s["state"] for i, s in states.items()}
        worked = False
        for role, people in users.items():
            # Each person works what their own inbox offers (four-eyes keeps an approval from its author's inbox).
            offered: dict[str, list[httpx.Client]] = {}
            for person in people:
                client = clients[person.name]
                for task in client.get("/tasks", params={"role": role, "state": "open", "limit": 200}).json()["items"]:
                    if task["instance_id"] in tracked:
                        offered.setdefault(task["id"], []).append(client)
            for task_id, takers in offered.items():
                worked |= _do_task(task_id, takers)
        if not worked:
            time.sleep(IDLE_PAUSE_SECONDS)
    stuck = [
        f"{s['process']}/{s['business_key']} {s['state']} open: {_open_steps(s)}"
        for s in (manager.get(f"/instances/{i}").json() for i in tracked)
        if s["state"] not in TERMINAL
    ]
    raise TimeoutError(f"the demo's instances did not all end in time; still active: {stuck}; see the worker log")


def _open_steps(instance: dict[str, Any]) -> list[str]:
    return [t["step"] for t in instance["tasks"] if t["state"] in ("open", "claimed")]


def _do_task(task_id: str, people: list[httpx.Client]) -> bool:
    """Claim and complete a task as the first of the people offered it who still may."""
    for client in people:
        detail = client.get(f"/tasks/{task_id}").json()
        if client.post(f"/tasks/{task_id}/claim").status_code != 200:
            continue
        data = sample_object(detail["form"] or {}, attach=uploader(client))
        done = client.post(f"/tasks/{task_id}/complete", json={"data": data})
        if done.status_code == 200:
            return True
        client.post(f"/tasks/{task_id}/release")
        raise RuntimeError(f"completing task {task_id} ({detail['process']}/{detail['step']}) failed: {done.text}")
    return False


def run_demo(*, drive_staff: bool, api: str | None = None, timeout: float = 600) -> None:
    """Set up the demo and optionally drive it to the end, printing what happens."""
    settings = get_settings()
    api = api or f"http://{settings.api_host}:{settings.api_port}"
    users = create_users()
    products, variants = load_catalogue()
    print(f"catalogue: {products} products, {variants} variants in {len(DEMO_LOCATIONS)} locations")
    tokens_file = settings.data_dir / "demo-tokens.json"
    tokens_file.write_text(json.dumps({u.name: u.token for p in users.values() for u in p}, indent=2), encoding="utf-8")
    print(f"users: {', '.join(u.name for p in users.values() for u in p)} (tokens in {tokens_file})")
    exports, timezone = settings.data_dir / "demo-exports", get_definitions().timezone
    for report in import_shop_data(api, users["customer_service"][0], exports, timezone=timezone):
        print(
            f"imported {report['kind']:<8} {report['source']:<32} created {report['created']}, "
            f"updated {report['updated']}, unchanged {report['unchanged']}, rejected {report['rejected']}"
        )
    print(f"shop exports in {exports}; today's sales: /ui/reports/daily/{datetime.now(ZoneInfo(timezone)).date()}")
    started = start_every_process(api, users["operations"][0])
    for instance in started:
        print(f"started {instance['process']:<28} {instance['business_key']}  {instance['id']}")
    if drive_staff:
        ended = drive(api, users, [i["id"] for i in started], timeout=timeout)
        counts: dict[str, int] = {}
        for state in ended.values():
            counts[state] = counts.get(state, 0) + 1
        print(f"all {len(ended)} instances (children included) ended: {counts}")
    print(f"watch them in the Prefect UI: {settings.resolved_prefect_ui_url}/runs")
