"""POST /inbound/{source}/events over real HTTP: signed per source, all or nothing, duplicates ignored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from ecomflow.api.app import create_app
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.platform_models import ImportRun, InboundDelivery, PlatformRefund
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake.push import sign
from tests.api.conftest import ApiServer, assert_error, client, field_names

SECRET = "erp-secret-for-tests"
PATH = "/inbound/erp/events"


@pytest.fixture
def http(api_server: ApiServer, clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """A client of the API whose source `erp` has a secret (settings read again for this test)."""
    monkeypatch.setenv("ECOMFLOW_INBOUND_SECRETS", json.dumps({"erp": SECRET}))
    get_settings.cache_clear()
    with client(api_server) as session:
        yield session
    monkeypatch.undo()
    get_settings.cache_clear()


def refund(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "refund_no": "TB-R-100",
        "order_no": "3401234567890123456",
        "kind": "exchange",
        "status": "requested",
        "platform_status": "买家已经申请换货，等待卖家同意",
        "amount": "129.00",
        "requested_at": "2026-12-05T10:15:00+08:00",
        "sku": "TEE-RED-M",
        "reason": "尺码不合适",
    }
    event.update(fields)
    return event


Send = Callable[..., httpx.Response]


@pytest.fixture
def send(http: httpx.Client) -> Send:
    def post(*events: dict[str, object], delivery: str = "d-1", secret: str = SECRET, at: float | None = None,
             path: str = PATH) -> httpx.Response:  # fmt: skip
        body = json.dumps({"platform": "tmall", "kind": "refunds", "events": list(events)}).encode()
        stamp = str(int(time.time() if at is None else at))
        headers = {
            "Content-Type": "application/json",
            "X-Ecomflow-Timestamp": stamp,
            "X-Ecomflow-Signature": sign(secret, stamp, body),
            "X-Ecomflow-Delivery": delivery,
        }
        return http.post(path, content=body, headers=headers)

    return post


def written() -> tuple[int, int, int, int]:
    with session_scope() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model))
            for model in (InboundDelivery, ImportRun, PlatformRefund, ProcessInstance)
        )


def test_a_signed_push_starts_a_return_of_its_kind(send: Send) -> None:
    answer = send(refund())
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"import_run_id": None} == {
        "duplicate": False, "import_run_id": None, "created": 1, "updated": 0, "unchanged": 0,
    }  # fmt: skip
    with session_scope() as session:
        case = session.scalar(select(ProcessInstance))
        assert (case.process_key, case.params["kind"], case.business_key) == (
            "returns_exchange", "exchange", "refund-tmall-TB-R-100",
        )  # fmt: skip


def test_a_repeated_delivery_is_acknowledged_and_ignored(send: Send) -> None:
    first = send(refund()).json()
    again = send(refund(refund_no="TB-R-200"), delivery="d-1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["import_run_id"] == first["import_run_id"]
    assert written() == (1, 1, 1, 1)


@pytest.mark.parametrize(
    ("how", "detail"),
    [
        ({"secret": "not-the-secret"}, "does not match"),
        ({"at": time.time() - 600}, "the window is 300 s"),
        ({"path": "/inbound/wms/events"}, "no inbound secret"),
    ],
)
def test_a_bad_signature_an_old_stamp_or_an_unknown_source_is_401_and_writes_nothing(
    send: Send, how: dict, detail: str
) -> None:
    body = assert_error(send(refund(), **how), 401, "Unauthorized")
    assert detail in body["detail"]
    assert written() == (0, 0, 0, 0)


def test_an_unsigned_push_is_401(http: httpx.Client) -> None:
    assert_error(http.post(PATH, json={"platform": "tmall", "kind": "refunds", "events": []}), 401, "Unauthorized")


def test_one_bad_event_is_a_422_naming_it_and_nothing_of_the_batch_is_written(send: Send) -> None:
    body = assert_error(send(refund(), refund(refund_no="TB-R-2", amount=12.5)), 422, "ValidationFailed")
    assert field_names(body) == ["events[1].amount"]
    assert written() == (0, 0, 0, 0)
    # The sender fixes the event and sends the batch again under the same delivery id: it is not a duplicate.
    assert send(refund(), refund(refund_no="TB-R-2", amount="12.50")).json()["created"] == 2


def test_a_missing_delivery_id_is_a_422_naming_the_header(send: Send) -> None:
    assert field_names(assert_error(send(refund(), delivery=""), 422, "ValidationFailed")) == ["X-Ecomflow-Delivery"]


def test_the_openapi_documents_the_scheme_and_an_example() -> None:
    operation = create_app().openapi()["paths"]["/inbound/{source}/events"]["post"]
    assert "HMAC-SHA256" in operation["description"] and '"<timestamp>." + body' in operation["description"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    assert example["kind"] == "refunds" and example["events"][0]["amount"] == "89.00"
    assert {"200", "401", "422"} <= set(operation["responses"])
