"""One error body everywhere, authentication, the caller, health and the request size limit."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from ecomflow.api import app as app_module
from ecomflow.api.errors import install_error_handlers
from ecomflow.engine.config import Settings
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import DefinitionError
from ecomflow.engine.people.users import revoke_tokens
from tests.api.conftest import Caller, assert_error
from tests.factories import make_task, return_params


class TestAuthentication:
    @pytest.mark.parametrize(
        "authorization",
        [None, "Basic dXNlcjpwdw==", "Bearer", "Bearer ecf_unknown-token"],
        ids=["missing", "wrong-scheme", "empty", "unknown"],
    )
    def test_bad_credentials_are_401_with_the_error_body(
        self, anonymous: httpx.Client, authorization: str | None
    ) -> None:
        headers = {"Authorization": authorization} if authorization is not None else {}
        response = anonymous.get("/me", headers=headers)
        body = assert_error(response, 401, "Unauthorized")
        assert "fields" not in body
        assert response.headers["www-authenticate"] == "Bearer"

    def test_revoked_token_is_401(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        assert worker.get("/me").status_code == 200
        with session_scope() as session:
            revoke_tokens(session, name=worker.name)
        assert_error(worker.get("/me"), 401, "Unauthorized")
        assert_error(worker.get("/tasks"), 401, "Unauthorized")

    def test_every_route_but_health_needs_a_token(self, clean_db: str, anonymous: httpx.Client) -> None:
        task_id = make_task(step="inspect")
        calls = [
            anonymous.get("/processes"),
            anonymous.get("/instances"),
            anonymous.get("/tasks"),
            anonymous.get(f"/tasks/{task_id}"),
            anonymous.post(f"/tasks/{task_id}/claim"),
            anonymous.post(
                "/processes/returns_exchange/instances", json={"business_key": "K-1", "params": return_params()}
            ),
        ]
        for response in calls:
            assert_error(response, 401, "Unauthorized")
        assert anonymous.get("/health").status_code == 200


class TestMe:
    def test_me_returns_name_and_roles(self, login: Callable[..., Caller]) -> None:
        clerk = login("warehouse", "customer_service", name="mei")
        assert clerk.get("/me").json() == {
            "name": "mei",
            "roles": ["customer_service", "warehouse"],
            "is_manager": False,
        }

    def test_me_marks_managers(self, login: Callable[..., Caller]) -> None:
        assert login("operations").get("/me").json()["is_manager"] is True


class TestHealth:
    def test_health_reports_db_and_prefect_without_a_token(self, anonymous: httpx.Client) -> None:
        response = anonymous.get("/health")
        assert response.status_code == 200
        # No Prefect server runs in these tests; health reports it and stays up.
        assert response.json() == {"status": "ok", "db": "ok", "prefect": "unavailable"}


class TestErrorBody:
    def test_403_shape(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        body = assert_error(worker.post(f"/tasks/{task_id}/assign", json={"user": worker.name}), 403, "Forbidden")
        assert task_id in body["detail"] and "fields" not in body

    def test_404_shape_for_an_unknown_task(self, login: Callable[..., Caller]) -> None:
        missing = str(uuid.uuid4())
        body = assert_error(login("owner").get(f"/tasks/{missing}"), 404, "NotFound")
        assert body == {"error": "NotFound", "detail": f"task {missing} does not exist"}

    def test_409_shape(self, login: Callable[..., Caller]) -> None:
        first, second = login("warehouse"), login("warehouse")
        task_id = make_task(step="inspect")
        assert first.post(f"/tasks/{task_id}/claim").status_code == 200
        body = assert_error(second.post(f"/tasks/{task_id}/claim"), 409, "AlreadyClaimed")
        assert body == {"error": "AlreadyClaimed", "detail": f"task {task_id} is already claimed by {first.name}"}

    def test_422_shape_from_a_form(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        assert worker.post(f"/tasks/{task_id}/claim").status_code == 200
        body = assert_error(worker.post(f"/tasks/{task_id}/complete", json={"data": {}}), 422, "ValidationFailed")
        assert body["fields"] == [
            {"field": "condition", "rule": "required", "message": "condition is required"},
            {"field": "restock", "rule": "required", "message": "restock is required"},
        ]

    def test_422_shape_from_the_request(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        body = assert_error(worker.post(f"/tasks/{task_id}/comments", json={"txt": "hi"}), 422, "ValidationFailed")
        assert {(f["field"], f["rule"]) for f in body["fields"]} == {("text", "missing"), ("txt", "extra_forbidden")}

    def test_malformed_json_is_422(self, login: Callable[..., Caller]) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        response = worker.post(
            f"/tasks/{task_id}/comments", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        body = assert_error(response, 422, "ValidationFailed")
        assert [f["rule"] for f in body["fields"]] == ["json_invalid"]

    @pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
    def test_unknown_route_is_404_with_the_error_body(
        self, login: Callable[..., Caller], anonymous: httpx.Client, with_token: bool
    ) -> None:
        http = login("warehouse").http if with_token else anonymous
        body = assert_error(http.get("/no/such/route"), 404, "NotFound")
        assert "fields" not in body

    def test_wrong_method_is_405_with_the_error_body(self, login: Callable[..., Caller]) -> None:
        task_id = make_task(step="inspect")
        assert_error(login("warehouse").get(f"/tasks/{task_id}/claim"), 405, "MethodNotAllowed")


class TestServerFaults:
    def test_an_invalid_flows_yaml_is_a_logged_500_that_tells_the_caller_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = FastAPI()
        install_error_handlers(app)

        @app.get("/broken")
        def broken() -> None:
            raise DefinitionError(["/srv/flows.yaml: processes.x.steps: expected a non-empty list of steps"])

        async def get() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
                return await http.get("/broken")

        with caplog.at_level(logging.ERROR, logger="ecomflow.api"):
            response = asyncio.run(get())
        assert response.status_code == 500
        assert response.json() == {
            "error": "DefinitionError",
            "detail": "the server is misconfigured; it has been logged",
        }
        assert "processes.x.steps: expected a non-empty list" in caplog.text


def _instance_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(ProcessInstance))


class TestBodySizeLimit:
    def test_body_over_the_default_limit_is_413(self, login: Callable[..., Caller]) -> None:
        clerk = login("customer_service")
        padded = json.dumps({"business_key": "BIG-1", "params": {**return_params(), "pad": "x" * 1_000_001}})
        response = clerk.post(
            "/processes/returns_exchange/instances", content=padded, headers={"Content-Type": "application/json"}
        )
        assert assert_error(response, 413, "PayloadTooLarge")["detail"] == "request bodies are limited to 1000000 bytes"
        assert _instance_count() == 0

    @pytest.fixture
    def small_limit_app(self, monkeypatch: pytest.MonkeyPatch) -> Callable[..., httpx.Response]:
        """Return a caller of the app built with a 1,000-byte limit, run in-process."""
        monkeypatch.setattr(app_module, "get_settings", lambda: Settings(max_request_bytes=1000))
        app = app_module.create_app()

        def call(path: str, **kwargs: Any) -> httpx.Response:
            async def post() -> httpx.Response:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                    return await http.post(path, **kwargs)

            return asyncio.run(post())

        return call

    def test_streamed_body_without_length_over_the_limit_is_413(
        self, small_limit_app: Callable[..., httpx.Response]
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b" " * 100

        response = small_limit_app("/tasks/x/comments", content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in response.request.headers
        assert_error(response, 413, "PayloadTooLarge")

    def test_body_at_the_limit_is_read(
        self, small_limit_app: Callable[..., httpx.Response], login: Callable[..., Caller]
    ) -> None:
        worker = login("warehouse")
        task_id = make_task(step="inspect")
        text = "x" * (1000 - len(json.dumps({"text": ""})))
        body = json.dumps({"text": text}).encode()
        assert len(body) == 1000
        response = small_limit_app(
            f"/tasks/{task_id}/comments",
            content=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {worker.token}"},
        )
        assert response.status_code == 201, response.text

    def test_length_header_over_the_limit_is_413(self, small_limit_app: Callable[..., httpx.Response]) -> None:
        response = small_limit_app(
            "/tasks/x/comments", content=b"{}" * 600, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 413, "PayloadTooLarge")
