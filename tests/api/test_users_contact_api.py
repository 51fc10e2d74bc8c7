"""PATCH /users/{name}/contact: people set where notifications reach them; managers may set anyone's."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.conftest import Caller, assert_error, field_names


class TestContact:
    def test_a_user_sets_their_mobile_and_sees_it_and_fields_left_out_stay(self, login: Callable[..., Caller]) -> None:
        lin = login("customer_service", name="lin")
        first = lin.http.patch("/users/lin/contact", json={"mobile": "13800000001", "wecom_id": "LinWei"})
        assert first.status_code == 200, first.text
        second = lin.http.patch("/users/lin/contact", json={"email": "lin@example.com"})
        assert second.json()["contact"] == {
            "mobile": "13800000001",
            "email": "lin@example.com",
            "dingtalk_id": None,
            "wecom_id": "LinWei",
            "feishu_id": None,
        }
        assert lin.get("/users/lin").json()["contact"]["email"] == "lin@example.com"

    def test_a_colleague_may_not_and_a_manager_may(self, login: Callable[..., Caller]) -> None:
        login("warehouse", name="wu")
        colleague, boss = login("warehouse"), login("operations")
        assert_error(colleague.http.patch("/users/wu/contact", json={"mobile": "13900000000"}), 403, "Forbidden")
        assert boss.http.patch("/users/wu/contact", json={"mobile": "13900000002"}).status_code == 200
        assert boss.get("/users/wu").json()["contact"]["mobile"] == "13900000002"

    def test_bad_values_are_a_422_naming_each_field(self, login: Callable[..., Caller]) -> None:
        lin = login("customer_service", name="lin")
        body = assert_error(
            lin.http.patch("/users/lin/contact", json={"mobile": "call me", "email": "nobody"}), 422, "ValidationFailed"
        )
        assert set(field_names(body)) == {"mobile", "email"}
        assert_error(lin.http.patch("/users/lin/contact", json={"fax": "1"}), 422, "ValidationFailed")
