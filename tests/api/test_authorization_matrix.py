"""Who may call what: every endpoint of the OpenAPI × every role × the object's ownership, against a table.

The expected statuses live in authorization_matrix.csv (endpoint, method, role, object, expected).
The endpoints are read from app.openapi(), so a new endpoint without rows fails here until its
rows are written (set ECOMFLOW_UPDATE_AUTHZ_MATRIX=1 to write the table from what the API does,
then review every changed row before committing: the table is the specification).

Callers: each role of flows.yaml, "anonymous" (no token) and "revoked" (a warehouse user whose
token was revoked). Anonymous and revoked callers are given a warehouse user's objects.
Objects, where the path has one:
  task_id      own (a task of the caller's role; claimed by the caller where the action needs a
               holder), colleague (of the caller's role, claimed by a colleague), other (of a role
               the caller lacks; a manager's "other" is a warehouse task), missing (a random id)
  instance_id  own (has a task of the caller's role), other (only another role's task), missing
  name         own (the caller), other (another user), missing (no such user)
  session_id   own (a live web session of the caller), other (another user's), missing (a random id)
  key          existing, missing
  code, sku    existing (a product / SKU in the catalogue), missing
  order_no     existing (a paid Tmall order, in an open wave), missing
  wave_id      existing (the open wave of a paid order: no instance yet), missing
  attachment_id  own (the caller's upload, used by nothing yet), visible (used by an instance with a task of
               the caller's role), hidden (used only by another role's instance), unreferenced (another
               user's upload, used by nothing), missing
Every cell gets fresh users and objects, so no cell depends on another.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ecomflow.api.app import create_app
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage, ProcessInstance
from ecomflow.engine.db.platform_models import ImportRun
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.versions import current_version
from ecomflow.engine.events.outbox import WEBHOOK
from ecomflow.engine.files.attachments import reference_attachments
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import find_user, revoke_tokens
from ecomflow.engine.people.web_sessions import session_policy, start_web_session
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.tasks.actions import claim_task, complete_task
from ecomflow.engine.tasks.step_tasks import open_task
from tests.api.conftest import ApiServer, assert_error, client, field_names
from tests.factories import make_attachment, make_user, return_params
from tests.images import picture
from tests.platform_orders import add_order, order_row, seed_stock

MATRIX = Path(__file__).with_name("authorization_matrix.csv")
UPDATE = os.environ.get("ECOMFLOW_UPDATE_AUTHZ_MATRIX") == "1"
# The web UI under /ui is another piece of work with its own (cookie) rules; this table covers the JSON API.
EXCLUDED_PREFIXES = ("/ui",)

ROLES = ("owner", "operations", "product", "promotion", "visual", "customer_service", "warehouse")
MANAGER_ROLES = frozenset({"owner", "operations"})  # PROCESSES.md's managers, as flows.yaml marks them
CALLERS = (*ROLES, "anonymous", "revoked")
# One human step per role, with output its form accepts.
WORK: dict[str, tuple[str, str, dict[str, Any]]] = {
    "owner": ("routine_promotion", "owner_budget_approval", {"decision": "approve"}),
    "operations": ("presales_order", "shortage_decision", {"decision": "backorder"}),
    "product": ("listing_upload", "verify_live", {"listing_url": "https://shop.example/item/1", "result": "ok"}),
    "promotion": ("routine_promotion", "plan_actions", {"budget": 100}),
    "visual": ("page_design", "design", {}),  # its files are uploaded by whoever completes it: see _work_data
    "customer_service": ("presales_order", "answer_inquiry", {"outcome": "no_order"}),
    "warehouse": ("returns_exchange", "inspect", {"condition": "ok", "restock": "yes"}),
}
OBJECTS = {
    "task_id": ("own", "colleague", "other", "missing"),
    "instance_id": ("own", "other", "missing"),
    "name": ("own", "other", "missing"),
    "session_id": ("own", "other", "missing"),
    "key": ("existing", "missing"),
    "attachment_id": ("own", "visible", "hidden", "unreferenced", "missing"),
    "code": ("existing", "missing"),
    "sku": ("existing", "missing"),
    "import_id": ("existing", "missing"),
    "order_no": ("existing", "missing"),
    "wave_id": ("existing", "missing"),
}
# A two-order review export: what a permitted caller uploads to POST /imports.
REVIEW_EXPORT = (
    "订单编号,子订单编号,评价时间,评价结果,评价内容\r\n"
    "3801,38011,2026-11-05 10:00:00,好评,很好\r\n"
    "3802,38021,2026-11-05 11:00:00,差评,起球\r\n"
).encode("gbk")
# Actions that need the task held: their own and colleague tasks are claimed first.
NEEDS_HOLDER = ("release", "delegate", "complete")


def _role_of(caller: str) -> str:
    return "warehouse" if caller in ("anonymous", "revoked") else caller


def _work_data(role: str, holder: str) -> dict[str, Any]:
    """Return output the role's step accepts from the holder: the visual step's files are the holder's uploads."""
    if role != "visual":
        return WORK[role][2]
    design = make_attachment(uploader=holder, data=b"%PDF-1.4\n%%EOF\n", name="home.pdf")
    return {"design_file": design, "previews": [make_attachment(uploader=holder)]}


def _other_role(role: str) -> str:
    return "customer_service" if role == "warehouse" else "warehouse"


def _new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _open_task(role: str, *, holder: str | None = None, started_by: str = "starter") -> tuple[str, str]:
    """Open the role's task in a new instance, claimed by holder if given; return (task id, instance id).

    The instance row is written directly: the twelve processes' start params are not what is tested here.
    """
    process, step, _ = WORK[role]
    definitions = get_definitions()
    key = _new_name("BK")
    with session_scope() as session:
        instance = ProcessInstance(
            process_key=process,
            definition_version=current_version(session, definitions, process),
            business_key=key,
            active_key=key,
            state="waiting",
            params={},
            started_by=started_by,
        )
        session.add(instance)
        session.flush()
        task = open_task(session, instance_id=instance.id, step=definitions.process(process).step(step))
        if holder is not None:
            claim_task(session, task_id=task.id, principal=Principal(name=holder, roles=frozenset({role})))
        return task.id, instance.id


@dataclass
class Cell:
    """One caller about to call one endpoint on one object."""

    caller: str
    name: str
    role: str
    headers: dict[str, str]

    def user_with_role(self, role: str) -> str:
        """Create another user with the role; return their name."""
        return make_user(name=_new_name(role), roles=(role,))[0].name


def _make_cell(caller: str) -> Cell:
    role = _role_of(caller)
    principal, token = make_user(name=_new_name(caller), roles=(role,))
    if caller == "revoked":
        with session_scope() as session:
            revoke_tokens(session, name=principal.name)
    headers = {} if caller == "anonymous" else {"Authorization": f"Bearer {token}"}
    return Cell(caller=caller, name=principal.name, role=role, headers=headers)


def _task_object(cell: Cell, obj: str, *, held: bool) -> str:
    if obj == "missing":
        return str(uuid.uuid4())
    if obj == "own":
        return _open_task(cell.role, holder=cell.name if held else None)[0]
    if obj == "colleague":
        return _open_task(cell.role, holder=cell.user_with_role(cell.role))[0]
    other = _other_role(cell.role)
    return _open_task(other, holder=cell.user_with_role(other) if held else None)[0]


def _instance_object(cell: Cell, obj: str) -> str:
    if obj == "missing":
        return str(uuid.uuid4())
    return _open_task(cell.role if obj == "own" else _other_role(cell.role))[1]


def _name_object(cell: Cell, obj: str) -> str:
    if obj == "own":
        return cell.name
    if obj == "other":
        return cell.user_with_role("warehouse")
    return _new_name("nobody")


def _session_object(cell: Cell, obj: str) -> str:
    if obj == "missing":
        return str(uuid.uuid4())
    owner = cell.name if obj == "own" else cell.user_with_role("warehouse")
    with session_scope() as session:
        started = start_web_session(
            session,
            user=find_user(session, owner),
            client_address="10.0.0.1",
            user_agent="matrix",
            now=utcnow(),
            policy=session_policy(),
        )
        return started.row.id


def _attachment_object(cell: Cell, obj: str) -> str:
    if obj == "missing":
        return str(uuid.uuid4())
    if obj == "own":
        return make_attachment(uploader=cell.name)
    attachment_id = make_attachment(uploader=cell.user_with_role("visual"))
    if obj != "unreferenced":
        instance_id = _open_task(cell.role if obj == "visible" else _other_role(cell.role))[1]
        with session_scope() as session:
            reference_attachments(session, [("previews[0]", attachment_id)], instance_id=instance_id, task_id="")
    return attachment_id


def _request(cell: Cell, method: str, path: str, obj: str) -> tuple[str, str, dict[str, Any]]:
    """Return the method, URL and request arguments a permitted caller would send."""
    action = path.rsplit("/", 1)[-1]
    kwargs: dict[str, Any] = {}
    if "{task_id}" in path:
        task_id = _task_object(cell, obj, held=action in NEEDS_HOLDER)
        path = path.replace("{task_id}", task_id)
        task_role = cell.role if obj in ("own", "colleague") else _other_role(cell.role)
        if action in ("assign", "delegate"):
            kwargs["json"] = {"user": cell.user_with_role(task_role), "reason": "covering"}
        elif action == "complete":
            kwargs["json"] = {"data": _work_data(task_role, cell.name)}
        elif action == "comments":
            kwargs["json"] = {"text": "checked"}
    elif "{instance_id}" in path:
        path = path.replace("{instance_id}", _instance_object(cell, obj))
        if action == "cancel":
            kwargs["json"] = {"reason": "customer withdrew"}
    elif "{name}" in path:
        path = path.replace("{name}", _name_object(cell, obj))
        if method == "PUT":
            kwargs["json"] = {"reason": "annual leave"}
        elif action == "contact":
            kwargs["json"] = {"mobile": "13800000000"}
    elif "{session_id}" in path:
        path = path.replace("{session_id}", _session_object(cell, obj))
    elif "{key}" in path:
        path = path.replace("{key}", "returns_exchange" if obj == "existing" else "no_such_process")
        if action == "instances":
            kwargs["json"] = {"business_key": _new_name("RET"), "params": return_params()}
    elif "{date}" in path:
        path = path.replace("{date}", "2026-11-11")
    elif "{source}" in path:
        # The pushed feed takes no bearer token: a caller without the source's signature is refused alike.
        path = path.replace("{source}", "erp")
        kwargs["json"] = {"platform": "tmall", "kind": "refunds", "events": []}
    elif "{attachment_id}" in path:
        path = path.replace("{attachment_id}", _attachment_object(cell, obj))
    elif "{code}" in path or "{sku}" in path:
        code = _catalogue_object() if obj == "existing" else _new_name("NO-SUCH")
        path = path.replace("{code}", code).replace("{sku}", code)
        if method == "PUT":
            kwargs["json"] = _product_body(code) | {"code": None}
            del kwargs["json"]["code"]
        elif action == "adjustments":
            kwargs["json"] = {
                "location": "WH-ONLINE",
                "quantity": 2,
                "reason": "found in a count",
                "business_key": code,
            }
    elif "{order_no}" in path:
        order_no = _platform_order() if obj == "existing" else _new_name("NO-SUCH")
        path = path.replace("{platform}", "tmall").replace("{order_no}", order_no)
    elif "{wave_id}" in path:
        order_no = _platform_order() if obj == "existing" else _new_name("NO-SUCH")
        wave_id = order_row(order_no)["wave_id"] if obj == "existing" else 999_999_999
        path = path.replace("{wave_id}", str(wave_id))
        if method == "POST":  # a tracking-number file naming the order (its open wave is not at 发货 yet)
            kwargs["files"] = {
                "file": ("运单号.csv", f"订单编号,物流公司,运单号\r\n{order_no},中通快递,ZT1\r\n".encode(), "text/csv")
            }
    elif path == "/catalog/products" and method == "POST":
        kwargs["json"] = _product_body(_new_name("NEW"))
    elif path == "/attachments":
        kwargs["files"] = {"file": ("shot.jpg", picture(), "image/jpeg")}
    elif "{import_id}" in path:
        path = path.replace("{import_id}", _import_object(obj))
    elif path == "/imports" and method == "POST":
        kwargs["files"] = {"file": ("评价.csv", REVIEW_EXPORT, "text/csv")}
        kwargs["data"] = {"kind": "reviews", "platform": "tmall"}
    elif path == "/tasks/bulk":
        kwargs["json"] = {"action": "claim", "task_ids": [_open_task(cell.role)[0]]}
    return method, path, kwargs


def _import_object(obj: str) -> str:
    """An import run of one review (or a made-up id); return its id."""
    if obj == "missing":
        return str(uuid.uuid4())
    with session_scope() as session:
        run = ImportRun(kind="reviews", platform="tmall", source="file:评价.csv", actor="starter")
        session.add(run)
        session.flush()
        return run.id


def _catalogue_object() -> str:
    """Put a one-variant product in the catalogue (product code = SKU code) with stock; return the code."""
    code = _new_name("MX")
    with session_scope() as session:
        seed_sku(session, sku=code, title="矩阵测试T恤", list_price=199, stock=5)
    return code


def _platform_order() -> str:
    """Put a paid Tmall order (and so an open wave) in the database; return its order number."""
    seed_stock()
    return add_order()


def _product_body(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "title": "纯棉T恤",
        "category": "T恤",
        "variants": [{"code": code, "list_price": "199.00", "colour": "白色", "size": "M"}],
    }


def _operations() -> list[tuple[str, str]]:
    """Return (path, METHOD) of every operation in the app's OpenAPI, in its order."""
    paths = create_app().openapi()["paths"]
    return [
        (path, method.upper())
        for path, operations in paths.items()
        if not path.startswith(EXCLUDED_PREFIXES)
        for method in operations
    ]


def _objects_of(path: str) -> tuple[str, ...]:
    return next((objects for param, objects in OBJECTS.items() if f"{{{param}}}" in path), ("-",))


def _read_matrix() -> dict[tuple[str, str, str, str], int]:
    with MATRIX.open(newline="") as file:
        return {
            (row["endpoint"], row["method"], row["role"], row["object"]): int(row["expected"])
            for row in csv.DictReader(file)
        }


def _write_matrix(actual: dict[tuple[str, str, str, str], int]) -> None:
    with MATRIX.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["endpoint", "method", "role", "object", "expected"])
        writer.writerows([*key, status] for key, status in actual.items())


def _diff_table(expected: dict[tuple[str, ...], int], actual: dict[tuple[str, ...], int]) -> list[str]:
    """Return one line per differing cell under a header; a row without an endpoint is "gone"."""
    row = "{:6} {:34} {:16} {:9} {:>8} {:>7}"
    lines = [
        row.format(method, path, role, obj, expected.get(key, "no row"), actual.get(key, "gone"))
        for key in [*actual, *(k for k in expected if k not in actual)]
        if expected.get(key) != actual.get(key)
        for path, method, role, obj in [key]
    ]
    return [row.format("method", "endpoint", "role", "object", "expected", "actual"), *lines] if lines else []


@pytest.fixture
def http(api_server: ApiServer, clean_db: str) -> Iterator[httpx.Client]:
    with client(api_server) as session:
        yield session


class TestAuthorizationMatrix:
    def test_every_endpoint_role_and_object_answers_as_the_table_says(self, http: httpx.Client) -> None:
        actual: dict[tuple[str, str, str, str], int] = {}
        for path, method in _operations():
            for caller in CALLERS:
                for obj in _objects_of(path):
                    cell = _make_cell(caller)
                    verb, url, kwargs = _request(cell, method, path, obj)
                    response = http.request(verb, url, headers=cell.headers, **kwargs)
                    actual[(path, method, caller, obj)] = response.status_code
                    if response.status_code >= 400:
                        assert_error(response, response.status_code, response.json()["error"])
        if UPDATE:
            _write_matrix(actual)
        expected = _read_matrix()
        if diff := _diff_table(expected, actual):
            pytest.fail("the API differs from authorization_matrix.csv:\n" + "\n".join(diff), pytrace=False)

    def test_the_table_names_only_known_roles_and_objects(self) -> None:
        for path, _method, role, obj in _read_matrix():
            assert role in CALLERS, role
            assert obj in _objects_of(path), (path, obj)


@dataclass
class Team:
    """One user per role (named <role>-1) with a token; the tasks are in the database."""

    tokens: dict[str, str]
    principals: dict[str, Principal]


@pytest.fixture
def team(clean_db: str) -> Team:
    """Per role: an open task, one claimed by a colleague, one completed (its instance started by another role);
    a warehouse task escalated to customer service; one webhook delivery."""
    tokens, principals = {}, {}
    for role in ROLES:
        principal, tokens[role] = make_user(name=f"{role}-1", roles=(role,))
        principals[role] = principal
    for role in ROLES:
        _open_task(role)
        _open_task(role, holder=make_user(name=f"{role}-2", roles=(role,))[0].name)
        task_id, _ = _open_task(role, holder=principals[role].name, started_by=principals[_other_role(role)].name)
        with session_scope() as session:
            complete_task(
                session,
                task_id=task_id,
                principal=principals[role],
                data=_work_data(role, principals[role].name),
            )
    escalated, _ = _open_task("warehouse")
    with session_scope() as session:
        session.get(HumanTask, escalated).escalated_to = "customer_service"
        session.add(
            OutboxMessage(
                kind=WEBHOOK,
                payload={
                    "endpoint": "im",
                    "delivery_id": str(uuid.uuid4()),
                    "event": "task.created",
                    "occurred_at": "",
                    "data": {},
                },
            )
        )
    return Team(tokens=tokens, principals=principals)


def _get(http: httpx.Client, token: str, path: str, **params: Any) -> httpx.Response:
    return http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def _is_manager(principal: Principal) -> bool:
    return bool(principal.roles & MANAGER_ROLES)


def _may_read_task(task: HumanTask, principal: Principal) -> bool:
    """The rule of DESIGN.md, written out here rather than borrowed from the engine under test."""
    if _is_manager(principal) or task.assignee == principal.name:
        return True
    return task.role in principal.roles or task.escalated_to in principal.roles


def _may_see_instance(session: Any, instance: ProcessInstance, principal: Principal) -> bool:
    if _is_manager(principal) or instance.started_by == principal.name:
        return True
    tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id))
    return any(_may_read_task(task, principal) for task in tasks)


class TestListingsShowOnlyWhatTheCallerMayRead:
    @pytest.mark.parametrize("state", [None, "open", "claimed", "completed"])
    def test_tasks(self, http: httpx.Client, team: Team, state: str | None) -> None:
        states = (state,) if state else ("open", "claimed")
        for role in ROLES:
            principal = team.principals[role]
            body = _get(http, team.tokens[role], "/tasks", limit=200, **({"state": state} if state else {})).json()
            assert body["next_cursor"] is None
            with session_scope() as session:
                readable = {t.id for t in session.scalars(select(HumanTask)) if _may_read_task(t, principal)}
                # Four-eyes: the inbox offers nobody a task they may not hold.
                offered = {t.id for t in session.scalars(select(HumanTask)) if principal.name not in t.excluded_users}
                wanted = (
                    set(session.scalars(select(HumanTask.id).where(HumanTask.state.in_(states)))) & readable & offered
                )
            leaked = [item["id"] for item in body["items"] if item["id"] not in readable]
            assert not leaked, f"{role} was shown tasks it may not read: {leaked}"
            assert {item["id"] for item in body["items"]} == wanted, role

    def test_an_escalated_task_shows_in_the_inbox_of_the_role_it_escalated_to(
        self, http: httpx.Client, team: Team
    ) -> None:
        items = _get(http, team.tokens["customer_service"], "/tasks", role="warehouse").json()["items"]
        ids = {item["id"] for item in items}
        with session_scope() as session:
            assert ids == set(session.scalars(select(HumanTask.id).where(HumanTask.escalated_to == "customer_service")))

    def test_instances(self, http: httpx.Client, team: Team) -> None:
        for role in ROLES:
            principal = team.principals[role]
            items = _get(http, team.tokens[role], "/instances", limit=200).json()["items"]
            with session_scope() as session:
                instances = session.scalars(select(ProcessInstance))
                visible = {i.id for i in instances if _may_see_instance(session, i, principal)}
            leaked = [item["id"] for item in items if item["id"] not in visible]
            assert not leaked, f"{role} was shown instances it may not read: {leaked}"
            assert {i["id"] for i in items} == visible, role

    def test_an_instance_shows_only_the_tasks_and_task_history_the_caller_may_read(
        self, http: httpx.Client, team: Team
    ) -> None:
        inspect, instance_id = _open_task("warehouse", holder="warehouse-2")
        with session_scope() as session:
            spec = get_definitions().process("returns_exchange").step("await_parcel")
            parcel = open_task(session, instance_id=instance_id, step=spec).id
            claim_task(session, task_id=parcel, principal=team.principals["customer_service"])
        expected = {"warehouse": {inspect}, "customer_service": {parcel}, "operations": {inspect, parcel}}
        for role, shown in expected.items():
            detail = _get(http, team.tokens[role], f"/instances/{instance_id}").json()
            assert {t["id"] for t in detail["tasks"]} == shown, role
            assert {e["task_id"] for e in detail["history"]} == shown, role

    def test_webhook_deliveries_are_for_managers_only(self, http: httpx.Client, team: Team) -> None:
        for role in ROLES:
            response = _get(http, team.tokens[role], "/webhooks/deliveries")
            if role in MANAGER_ROLES:
                assert response.status_code == 200 and len(response.json()["items"]) == 1
            else:
                assert "items" not in assert_error(response, 403, "Forbidden")

    def test_kpis_of_a_non_manager_are_their_own(self, http: httpx.Client, team: Team) -> None:
        for role in ROLES:
            name = team.principals[role].name
            body = _get(http, team.tokens[role], "/reports/kpi").json()
            keys = {row["key"] for row in body["rows"]}
            if role in MANAGER_ROLES:
                assert {f"{r}-1" for r in ROLES} <= keys
            else:
                assert keys == {name}, role
                assert body["total"] == {**body["rows"][0], "key": body["total"]["key"]}
            for group_by in ("role", "process"):
                status = _get(http, team.tokens[role], "/reports/kpi", group_by=group_by).status_code
                assert status == (200 if role in MANAGER_ROLES else 403), (role, group_by)


def _counts(task_id: str) -> tuple[str, Any, int, int]:
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        events = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.task_id == task_id))
        messages = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.task_id == task_id)
        )
        return task.state, task.output, events, messages


class TestFieldsOutsideAFormAreRefused:
    @pytest.fixture
    def holder(self, api_server: ApiServer, clean_db: str) -> Iterator[tuple[httpx.Client, Callable[..., str]]]:
        principal, token = make_user(name="wu", roles=("warehouse", "customer_service"))

        def claimed(role: str = "warehouse") -> str:
            return _open_task(role, holder=principal.name)[0]

        with client(api_server, token) as http:
            yield http, claimed

    def test_an_extra_field_in_the_data_is_a_422_naming_it_and_nothing_is_saved(
        self, holder: tuple[httpx.Client, Callable[..., str]]
    ) -> None:
        http, claimed = holder
        task_id = claimed()
        before = _counts(task_id)
        data = {"condition": "ok", "restock": "yes", "refund_to": "6222 0000 1111"}
        body = assert_error(http.post(f"/tasks/{task_id}/complete", json={"data": data}), 422, "ValidationFailed")
        message = "refund_to is not a field of this form"
        assert body["fields"] == [{"field": "refund_to", "rule": "unknown_field", "message": message}]
        assert _counts(task_id) == before
        assert before[:2] == ("claimed", None)

    def test_an_extra_field_inside_a_list_of_objects_is_named_by_its_path(
        self, holder: tuple[httpx.Client, Callable[..., str]]
    ) -> None:
        http, claimed = holder
        task_id = claimed("customer_service")
        before = _counts(task_id)
        data = {"outcome": "ordered", "order_lines": [{"sku": "A-1", "quantity": 1, "discount": 0.5}]}
        body = assert_error(http.post(f"/tasks/{task_id}/complete", json={"data": data}), 422, "ValidationFailed")
        assert field_names(body) == ["order_lines[0].discount"]
        assert _counts(task_id) == before

    def test_an_extra_field_beside_data_is_a_422_naming_it(
        self, holder: tuple[httpx.Client, Callable[..., str]]
    ) -> None:
        http, claimed = holder
        task_id = claimed()
        before = _counts(task_id)
        payload = {"data": {"condition": "ok", "restock": "yes"}, "approved_by": "boss"}
        body = assert_error(http.post(f"/tasks/{task_id}/complete", json=payload), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("approved_by", "extra_forbidden")]
        assert _counts(task_id) == before

    def test_an_extra_start_param_is_a_422_and_no_instance_is_made(
        self, holder: tuple[httpx.Client, Callable[..., str]]
    ) -> None:
        http, _ = holder
        payload = {"business_key": "RET-9", "params": {**return_params(), "vip": True}}
        body = assert_error(http.post("/processes/returns_exchange/instances", json=payload), 422, "ValidationFailed")
        assert field_names(body) == ["vip"]
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
