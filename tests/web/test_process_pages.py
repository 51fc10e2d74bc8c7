"""Starting a process from the browser: the list, the start form, the starters rule, and problems by field."""

from __future__ import annotations

from sqlalchemy import select

from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from tests.factories import return_params
from tests.web.conftest import csrf_of, sign_in


def _instances(business_key: str) -> list[ProcessInstance]:
    # The staff fixture empties the database once per module: look only at this test's business key.
    with session_scope() as session:
        return list(session.scalars(select(ProcessInstance).where(ProcessInstance.business_key == business_key)))


def _return_form(csrf: str, business_key: str, **overrides: object) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "business_key": business_key,
        **{key: str(value) for key, value in return_params(**overrides).items()},
    }


class TestProcessList:
    def test_a_user_sees_what_they_may_start_first(self, staff, web_server):
        with sign_in(web_server, "lin") as http:
            page = http.get("/ui/processes")
        assert page.status_code == 200
        rows = [(row.split('"')[0], "/start" in row.split("</tr>")[0]) for row in page.text.split('data-process="')[1:]]
        startable = [key for key, may in rows if may]
        assert startable == ["customer_care_copy", "presales_order", "returns_exchange", "review_follow_up"]
        assert [may for _, may in rows] == sorted((may for _, may in rows), reverse=True)


class TestStartForm:
    def test_a_starter_starts_a_return(self, staff, web_server):
        with sign_in(web_server, "lin") as http:
            form = http.get("/ui/processes/returns_exchange/start")
            assert form.status_code == 200 and 'name="business_key"' in form.text and 'name="order_id"' in form.text
            started = http.post("/ui/processes/returns_exchange/start", data=_return_form(csrf_of(form.text), "ORD-77"))
        assert started.status_code == 303 and started.headers["location"] == "/ui"
        [instance] = _instances("ORD-77")
        assert (instance.business_key, instance.started_by, instance.params["amount"]) == ("ORD-77", "lin", 199)

    def test_a_non_starter_gets_a_403_page_and_nothing_starts(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            assert http.get("/ui/processes/returns_exchange/start").status_code == 403
            csrf = csrf_of(http.get("/ui/processes").text)
            refused = http.post("/ui/processes/returns_exchange/start", data=_return_form(csrf, "ORD-78"))
        assert refused.status_code == 403 and "不能发起" in refused.text
        assert _instances("ORD-78") == []

    def test_problems_come_back_next_to_their_fields(self, staff, web_server):
        with sign_in(web_server, "lin") as http:
            form = http.get("/ui/processes/returns_exchange/start")
            answer = http.post(
                "/ui/processes/returns_exchange/start", data={**_return_form(csrf_of(form.text), ""), "amount": "-5"}
            )
            again = http.post(
                "/ui/processes/returns_exchange/start",
                data={**_return_form(csrf_of(form.text), "ORD-79"), "amount": "-5"},
            )
        assert answer.status_code == again.status_code == 422
        assert 'id="f-business_key-error"' in answer.text
        assert 'id="f-amount-error"' in again.text and 'id="f-business_key-error"' not in again.text
        assert _instances("") == _instances("ORD-79") == []

    def test_an_unknown_process_is_404(self, staff, web_server):
        with sign_in(web_server, "lin") as http:
            assert http.get("/ui/processes/no_such_thing/start").status_code == 404
