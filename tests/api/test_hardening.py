"""Hardening over real HTTP: body size, listing limits, form string lengths, tokens, and what reaches the logs."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecomflow.api.app import create_app
from ecomflow.cli import app as cli_app
from ecomflow.engine.db.models import ApiToken, AuditEvent, HumanTask, ProcessInstance, TaskComment
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.people.users import find_user, issue_token
from ecomflow.engine.shop.catalog import seed_sku
from tests.api.conftest import ApiServer, Caller, assert_error, client, field_names
from tests.factories import make_task, return_params

LIMIT_BYTES = 1_000_000
MAX_LISTING_LIMIT = 200
# The longest string any form may take, whatever flows.yaml says.
MAX_FORM_STRING = 10_000


def _count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


class TestBodySizeLimit:
    def test_a_body_over_the_limit_with_content_length_is_413_and_nothing_is_saved(
        self, login: Callable[..., Caller]
    ) -> None:
        clerk = login("customer_service")
        payload = {"business_key": "BIG-1", "params": {**return_params(), "reason": "x" * LIMIT_BYTES}}
        response = clerk.post("/processes/returns_exchange/instances", json=payload)
        assert int(response.request.headers["content-length"]) > LIMIT_BYTES
        assert_error(response, 413, "PayloadTooLarge")
        assert _count(ProcessInstance) == 0

    def test_a_chunked_body_over_the_limit_without_content_length_is_413_and_nothing_is_saved(
        self, login: Callable[..., Caller]
    ) -> None:
        clerk = login("warehouse")
        task_id = make_task(step="inspect")

        def chunks() -> Iterator[bytes]:
            yield b'{"text": "'
            for _ in range(110):
                yield b"x" * 10_000
            yield b'"}'

        response = clerk.post(
            f"/tasks/{task_id}/comments", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert_error(response, 413, "PayloadTooLarge")
        assert _count(TaskComment) == 0
        assert clerk.get("/me").status_code == 200  # and the server goes on answering

    def test_a_chunked_body_under_the_limit_is_read(self, login: Callable[..., Caller]) -> None:
        clerk = login("warehouse")
        task_id = make_task(step="inspect")
        response = clerk.post(
            f"/tasks/{task_id}/comments",
            content=iter([b'{"text": ', b'"parcel arrived"}']),
            headers={"Content-Type": "application/json"},
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 201, response.text


class TestMalformedBodies:
    @pytest.mark.parametrize(
        "content",
        [b'{"text": "\xff\xfe"}', b"[" * 200_000, b'{"text": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001],
        ids=["not-utf8", "deep-array", "deep-object"],
    )
    def test_an_undecodable_body_is_a_422_naming_the_body(self, login: Callable[..., Caller], content: bytes) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        response = worker.post(
            f"/tasks/{task_id}/comments", content=content, headers={"Content-Type": "application/json"}
        )
        body = assert_error(response, 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("body", "json_invalid")]
        assert _count(TaskComment) == 0

    @pytest.mark.parametrize(
        "if_match",
        ["9" * 5000, "²".encode("latin-1"), "1.5", ""],
        ids=["5000-digits", "superscript", "decimal", "empty"],
    )
    def test_an_if_match_that_is_no_version_is_a_422_naming_it(
        self, login: Callable[..., Caller], if_match: str | bytes
    ) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        assert worker.post(f"/tasks/{task_id}/claim").status_code == 200
        data = {"condition": "ok", "restock": "yes"}
        response = worker.post(f"/tasks/{task_id}/complete", json={"data": data}, headers={"If-Match": if_match})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["If-Match"]

    def test_a_huge_offset_is_a_422_naming_it(self, login: Callable[..., Caller]) -> None:
        response = login("owner").get("/instances", params={"offset": 2**70})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["offset"]


def _listings() -> list[tuple[str, dict[str, Any]]]:
    """Return (path, limit parameter or {}) of every GET operation whose answer is a page of items."""
    spec = create_app().openapi()
    schemas = spec["components"]["schemas"]
    found = []
    for path, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None or path.startswith("/ui"):
            continue
        # Downloads answer bytes and maps answer SVG, never a page of items.
        json_body = operation["responses"]["200"].get("content", {}).get("application/json", {})
        ref = json_body.get("schema", {}).get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if properties.get("items", {}).get("type") == "array":
            limit = next(
                (p for p in operation.get("parameters", []) if p["name"] == "limit" and p["in"] == "query"), {}
            )
            found.append((path, limit))
    return found


LISTINGS = _listings()


class TestListingLimits:
    def test_the_listings_are_found(self) -> None:
        assert {path for path, _ in LISTINGS} >= {"/tasks", "/instances", "/webhooks/deliveries"}

    @pytest.mark.parametrize(("path", "limit"), LISTINGS, ids=[path for path, _ in LISTINGS])
    def test_every_listing_takes_a_limit_of_at_most_200(self, path: str, limit: dict[str, Any]) -> None:
        assert limit, f"{path} returns a page of items but takes no limit"
        assert 1 <= limit["schema"]["maximum"] <= MAX_LISTING_LIMIT, limit

    @pytest.mark.parametrize("path", [path for path, _ in LISTINGS])
    def test_a_limit_beyond_200_is_a_422_naming_limit(self, login: Callable[..., Caller], path: str) -> None:
        manager = login("owner")
        if "{sku}" in path:  # a SKU's movements: one that exists
            with session_scope() as session:
                seed_sku(session, sku="LIMIT-SKU", title="T恤", list_price=99, stock=1)
            path = path.replace("{sku}", "LIMIT-SKU")
        assert manager.get(path, params={"limit": MAX_LISTING_LIMIT}).status_code == 200
        for limit in (MAX_LISTING_LIMIT + 1, 10**6, 0, -1):
            body = assert_error(manager.get(path, params={"limit": limit}), 422, "ValidationFailed")
            assert field_names(body) == ["limit"], body

    def test_the_kpi_report_is_bounded_by_its_groups_not_a_limit(self, login: Callable[..., Caller]) -> None:
        # One row per person, role or process, at most 366 days: not a page of items, so no limit.
        assert "/reports/kpi" not in {path for path, _ in LISTINGS}
        too_long = login("owner").get("/reports/kpi", params={"from": "2025-01-01", "to": "2026-06-01"})
        assert field_names(assert_error(too_long, 422, "ValidationFailed")) == ["to"]


def _string_schemas(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (field path, schema) of every string in a form's JSON Schema, nested objects and lists included."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string":
        yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _string_schemas(child, f"{path}.{name}" if path else name)
    if "items" in schema:
        yield from _string_schemas(schema["items"], f"{path}[]")


def _forms() -> list[tuple[str, dict[str, Any]]]:
    forms = []
    for process in get_definitions().processes.values():
        forms.append((f"{process.key}.start_form", dict(process.start_form.json_schema)))
        forms.extend((f"{process.key}.{step.key}", dict(step.form.json_schema)) for step in process.steps if step.form)
    return forms


class TestFormStringLengths:
    @pytest.mark.parametrize(("where", "schema"), _forms(), ids=[where for where, _ in _forms()])
    def test_every_string_field_has_a_maximum(self, where: str, schema: dict[str, Any]) -> None:
        for field, string in _string_schemas(schema, ""):
            if "enum" in string or "format" in string:
                continue  # bounded by its values or its format
            assert 1 <= string.get("maxLength", MAX_FORM_STRING + 1) <= MAX_FORM_STRING, f"{where}: {field} {string}"

    def test_an_over_long_text_in_a_task_form_is_a_422_naming_the_field(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        assert worker.post(f"/tasks/{task_id}/claim").status_code == 200
        notes = (
            get_definitions().process("returns_exchange").step("inspect").form.get_field("notes").attrs["max_length"]
        )
        data = {"condition": "ok", "restock": "yes", "notes": "长" * (notes + 1)}
        body = assert_error(worker.post(f"/tasks/{task_id}/complete", json={"data": data}), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("notes", "max_length")]
        with session_scope() as session:
            task = session.get(HumanTask, task_id)
            assert (task.state, task.output) == ("claimed", None)
        data["notes"] = "长" * notes
        assert worker.post(f"/tasks/{task_id}/complete", json={"data": data}).status_code == 200

    def test_an_over_long_start_param_is_a_422_naming_it(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        payload = {"business_key": "RET-1", "params": {**return_params(), "reason": "x" * 2001, "sku": "s" * 65}}
        body = assert_error(clerk.post("/processes/returns_exchange/instances", json=payload), 422, "ValidationFailed")
        assert sorted((f["field"], f["rule"]) for f in body["fields"]) == [
            ("reason", "max_length"),
            ("sku", "max_length"),
        ]
        assert _count(ProcessInstance) == 0


class TestTokens:
    def test_tokens_are_stored_as_sha256_hashes_only(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        with session_scope() as session:
            stored = [tuple(str(value) for value in row) for row in session.execute(select(ApiToken.__table__))]
        assert [row for row in stored if hashlib.sha256(worker.token.encode()).hexdigest() in row]
        assert not [row for row in stored if any(worker.token in value for value in row)]

    def test_revoking_the_current_token_makes_it_401_at_once_and_keeps_the_others(
        self, login: Callable[..., Caller], api_server: ApiServer
    ) -> None:
        worker = login("warehouse")
        with session_scope() as session:
            second = issue_token(session, user=find_user(session, worker.name))
        assert worker.post("/me/tokens/revoke").json() == {"revoked": 1}
        assert_error(worker.get("/me"), 401, "Unauthorized")
        assert_error(worker.post("/me/tokens/revoke"), 401, "Unauthorized")
        with client(api_server, second) as other_device:
            assert other_device.get("/me").json()["name"] == worker.name

    def test_a_manager_revokes_every_token_of_a_user(self, login: Callable[..., Caller], api_server: ApiServer) -> None:
        manager, worker = login("operations"), login("warehouse")
        with session_scope() as session:
            second = issue_token(session, user=find_user(session, worker.name))
        assert manager.post(f"/users/{worker.name}/tokens/revoke").json() == {"revoked": 2, "web_sessions_revoked": 0}
        assert_error(worker.get("/tasks"), 401, "Unauthorized")
        with client(api_server, second) as other_device:
            assert_error(other_device.get("/me"), 401, "Unauthorized")
        with session_scope() as session:
            event = session.scalar(select(AuditEvent).where(AuditEvent.type == "user.tokens_revoked"))
            assert (event.actor, event.data) == (manager.name, {"user": worker.name, "count": 2})
        assert manager.get("/me").status_code == 200

    def test_only_the_user_or_a_manager_may_revoke_a_users_tokens(self, login: Callable[..., Caller]) -> None:
        worker, colleague, manager = login("warehouse"), login("warehouse"), login("owner")
        assert_error(worker.post(f"/users/{colleague.name}/tokens/revoke"), 403, "Forbidden")
        assert colleague.get("/me").status_code == 200
        assert_error(manager.post("/users/nobody/tokens/revoke"), 404, "NotFound")
        assert worker.post(f"/users/{worker.name}/tokens/revoke").json() == {"revoked": 1, "web_sessions_revoked": 0}
        assert_error(worker.get("/me"), 401, "Unauthorized")

    def test_the_cli_revokes_every_token_of_a_user(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        result = CliRunner().invoke(cli_app, ["users", "revoke", worker.name])
        assert result.exit_code == 0, result.output
        assert f"revoked 1 token(s) and 0 web session(s) of {worker.name}" in result.output
        assert_error(worker.get("/me"), 401, "Unauthorized")
        assert CliRunner().invoke(cli_app, ["users", "revoke", "nobody"]).exit_code == 2


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every record of every logger at DEBUG, uvicorn's access log and non-propagating loggers included."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = {logger: logger.level for logger in loggers}
    detached = [logger for logger in loggers if not logger.propagate]
    caplog.set_level(logging.DEBUG)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in detached:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in detached:
            logger.removeHandler(caplog.handler)
        for logger, level in levels.items():
            logger.setLevel(level)


def _texts(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), record.exc_text or "", str(record.__dict__.get("args", ""))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


class TestNoSecretsInLogs:
    def test_a_request_cycle_logs_no_token_and_no_customer_data(
        self, login: Callable[..., Caller], every_logger_at_debug: pytest.LogCaptureFixture
    ) -> None:
        clerk = login("customer_service", name="mei")
        secrets = {
            "token": clerk.token,
            "customer": "王小明 13800138000",
            "question": "能寄到 上海市浦东新区张江路 88 号吗",
            "order": "ORD-20260518-7731",
            "tracking": "SF1234567890",
            "notes": "顾客说手机 13800138000 白天打",
        }
        params = {"customer": secrets["customer"], "question": secrets["question"], "channel": "im"}
        started = clerk.post("/processes/presales_order/instances", json={"business_key": "PRE-1", "params": params})
        assert started.status_code == 201, started.text
        instance_id = started.json()["id"]
        assert clerk.get(f"/instances/{instance_id}").status_code == 200
        task_id = make_task(process="presales_order", step="answer_inquiry", instance_id=instance_id)
        assert clerk.get("/tasks", params={"process": "presales_order"}).json()["items"][0]["id"] == task_id
        assert clerk.post(f"/tasks/{task_id}/claim").status_code == 200
        refused = {"outcome": "ordered", "order_id": secrets["tracking"] + "!"}
        assert clerk.post(f"/tasks/{task_id}/complete", json={"data": refused}).status_code == 422
        output = {"outcome": "ordered", "order_id": secrets["order"], "notes": secrets["notes"], "fulfilment": "ship"}
        completed = clerk.post(f"/tasks/{task_id}/complete", json={"data": output}, headers={"Idempotency-Key": "k-1"})
        assert completed.status_code == 200
        assert clerk.post(f"/tasks/{task_id}/comments", json={"text": secrets["notes"]}).status_code == 201
        assert clerk.get(f"/tasks/{task_id}").json()["output"] == output
        assert clerk.post("/me/tokens/revoke").status_code == 200
        assert clerk.get("/me").status_code == 401

        records = every_logger_at_debug.records
        assert any(r.name == "uvicorn.access" for r in records), "the access log was not captured"
        assert any(r.name.startswith("sqlalchemy") for r in records), "the database log was not captured"
        leaks = [
            (what, record.name, record.getMessage()[:200])
            for record in records
            for what, secret in secrets.items()
            if secret in _texts(record)
        ]
        assert not leaks, "\n".join(sorted({f"{what} {name} {message[:50]}" for what, name, message in leaks}))


class TestNulCharacter:
    """PostgreSQL text cannot hold U+0000: every way in is refused with a 422 naming where it was."""

    def test_in_a_comment_is_refused_naming_the_field(self, login: Callable[..., Caller]) -> None:
        caller = login("warehouse")
        task_id = make_task()
        answer = caller.post(f"/tasks/{task_id}/comments", json={"text": "ok\u0000then"})
        assert answer.status_code == 422
        assert field_names(answer.json()) == ["body.text"]
        assert caller.get(f"/tasks/{task_id}").json()["comments"] == []

    def test_in_form_data_is_refused_naming_the_nested_field(self, login: Callable[..., Caller]) -> None:
        caller = login("warehouse")
        task_id = make_task()
        assert caller.post(f"/tasks/{task_id}/claim").status_code == 200
        answer = caller.post(f"/tasks/{task_id}/complete", json={"data": {"condition": "ok", "notes": "a\u0000"}})
        assert answer.status_code == 422 and field_names(answer.json()) == ["body.data.notes"]
        assert caller.get(f"/tasks/{task_id}").json()["state"] == "claimed"

    def test_in_the_query_is_refused(self, login: Callable[..., Caller]) -> None:
        caller = login("warehouse")
        answer = caller.get("/tasks", params={"process": "returns\u0000"})
        assert answer.status_code == 422 and field_names(answer.json()) == ["url"]

    def test_an_escaped_backslash_before_u0000_is_plain_text(self, login: Callable[..., Caller]) -> None:
        caller = login("warehouse")
        task_id = make_task()
        # The JSON text "\\u0000" is a backslash followed by "u0000": no NUL in it.
        answer = caller.post(
            f"/tasks/{task_id}/comments",
            content=b'{"text": "path C:\\\\u0000"}',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 201, answer.text
