"""The web pages over plain HTTP: sessions and their cookie flags, CSRF refusals, 403s and 404s, language choice."""

from __future__ import annotations

import httpx
import pytest

from ecomflow.api.web.auth import SESSION_COOKIE
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import outbox
from ecomflow.engine.people.users import set_password
from tests.factories import add_task_row, make_instance
from tests.web.conftest import PASSWORD, WebServer, csrf_of, new_task, sign_in


def _session_cookie_header(response: httpx.Response) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


@pytest.fixture
def anonymous(web_server: WebServer) -> httpx.Client:
    with httpx.Client(base_url=web_server.url, timeout=30) as http:
        yield http


class TestSignIn:
    def test_pages_send_a_visitor_to_sign_in(self, staff, anonymous):
        answer = anonymous.get("/ui/dashboard")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fdashboard"

    def test_the_session_cookie_is_httponly_lax_and_limited_to_the_pages(self, staff, web_server, anonymous):
        login = anonymous.get("/ui/login")
        answer = anonymous.post(
            "/ui/login", data={"csrf_token": csrf_of(login.text), "name": "wu", "password": PASSWORD}
        )
        assert answer.status_code == 303
        flags = [part.strip().lower() for part in _session_cookie_header(answer).split(";")]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/ui" in flags
        assert "secure" not in flags  # served over http here

    def test_the_session_cookie_is_secure_over_https(self, staff, web_server):
        # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as it would from a TLS-terminating proxy; no cookie jar
        # here, since a jar would not send Secure cookies back over this test's plain http.
        https = {"X-Forwarded-Proto": "https"}
        login = httpx.get(f"{web_server.url}/ui/login", headers=https)
        pre_session = login.headers["set-cookie"].split(";")[0]
        assert "secure" in login.headers["set-cookie"].lower()
        answer = httpx.post(
            f"{web_server.url}/ui/login",
            data={"csrf_token": csrf_of(login.text), "name": "wu", "password": PASSWORD},
            headers={**https, "Cookie": pre_session},
        )
        assert answer.status_code == 303
        assert "secure" in [part.strip().lower() for part in _session_cookie_header(answer).split(";")]

    def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(self, staff, anonymous):
        login = anonymous.get("/ui/login")
        token = csrf_of(login.text)
        wrong = anonymous.post("/ui/login", data={"csrf_token": token, "name": "wu", "password": "not-the-password"})
        unknown = anonymous.post(
            "/ui/login", data={"csrf_token": token, "name": "nobody", "password": "not-the-password"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
        assert SESSION_COOKIE not in wrong.cookies and SESSION_COOKIE not in unknown.cookies

    def test_signing_out_ends_the_session(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            inbox = http.get("/ui")
            assert http.post("/ui/logout", data={"csrf_token": "not-this-sessions"}).status_code == 403
            assert http.post("/ui/logout", data={"csrf_token": csrf_of(inbox.text)}).status_code == 303
            assert http.get("/ui").status_code == 303
            # Signing out again (an old tab) has no session to end: back to sign-in, not a refusal.
            assert http.post("/ui/logout", data={"csrf_token": csrf_of(inbox.text)}).headers["location"] == "/ui/login"

    def test_a_new_password_ends_older_sessions(self, staff, web_server):
        with sign_in(web_server, "lin") as http:
            assert http.get("/ui").status_code == 200
            with session_scope() as session:
                set_password(session, name="lin", password=PASSWORD)  # same text, new salt: a new hash
            assert http.get("/ui").status_code == 303

    def test_the_api_does_not_accept_the_session_cookie(self, staff, web_server):
        with sign_in(web_server, "zhou") as http:
            cookie = http.cookies[SESSION_COOKIE]
        answer = httpx.get(f"{web_server.url}/tasks", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        assert answer.status_code == 401

    def test_sign_in_never_redirects_off_the_site(self, staff, anonymous):
        login = anonymous.get("/ui/login")
        answer = anonymous.post(
            "/ui/login",
            data={
                "csrf_token": csrf_of(login.text),
                "name": "wu",
                "password": PASSWORD,
                "next": "https://evil.example/ui",
            },
        )
        assert answer.headers["location"] == "/ui"


class TestCsrf:
    def test_a_post_without_the_token_is_refused(self, staff, web_server):
        task_id = new_task()
        with sign_in(web_server, "wu") as http:
            answer = http.post(f"/ui/tasks/{task_id}/claim", data={"next": "/ui"})
        assert answer.status_code == 403
        assert "表单已过期或来自其他网站" in answer.text
        assert _task(task_id).state == "open"

    def test_a_token_of_another_session_is_refused(self, staff, web_server):
        task_id = new_task()
        with sign_in(web_server, "wang") as other:
            foreign = csrf_of(other.get("/ui").text)
        with sign_in(web_server, "wu") as http:
            answer = http.post(f"/ui/tasks/{task_id}/claim", data={"csrf_token": foreign})
        assert answer.status_code == 403
        assert _task(task_id).state == "open"

    def test_a_cross_site_sign_in_without_the_pre_session_cookie_is_refused(self, staff, anonymous):
        answer = anonymous.post("/ui/login", data={"name": "wu", "password": PASSWORD, "csrf_token": "guessed"})
        assert answer.status_code == 403

    def test_the_token_passes_and_the_action_happens(self, staff, web_server):
        task_id = new_task()
        with sign_in(web_server, "wu") as http:
            answer = http.post(
                f"/ui/tasks/{task_id}/claim", data={"csrf_token": csrf_of(http.get("/ui").text), "next": "/ui"}
            )
        assert answer.status_code == 303 and answer.headers["location"] == "/ui"
        assert _task(task_id).assignee == "wu"


class TestRefusals:
    def test_the_dashboard_is_for_managers_only(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            page = http.get("/ui/dashboard")
            bulk = http.post("/ui/dashboard/bulk", data={"csrf_token": csrf_of(page.text), "action": "claim"})
        assert page.status_code == 403 and "仅限管理者" in page.text
        assert bulk.status_code == 403

    def test_a_task_of_another_role_does_not_exist_for_the_user(self, staff, web_server):
        task_id = new_task()  # a warehouse task
        with sign_in(web_server, "lin") as http:
            answer = http.get(f"/ui/tasks/{task_id}")
        assert answer.status_code == 404
        assert "任务不存在" in answer.text

    def test_reassigning_is_for_managers(self, staff, web_server):
        task_id = new_task(claimed_by="wu")
        with sign_in(web_server, "wang") as http:
            token = csrf_of(http.get("/ui").text)
            answer = http.post(
                f"/ui/tasks/{task_id}/assign", data={"csrf_token": token, "user": "wang", "reason": "mine now"}
            )
        assert answer.status_code == 403
        assert _task(task_id).assignee == "wu"

    def test_the_live_refresh_gets_401_once_signed_out(self, staff, anonymous):
        assert anonymous.get("/ui/inbox/live", headers={"X-Live-Refresh": "1"}).status_code == 401

    def test_the_live_refresh_answers_204_while_nothing_changes(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            first = http.get("/ui/inbox/live")
            again = http.get("/ui/inbox/live", params={"known": first.headers["x-fingerprint"]})
        assert first.status_code == 200 and again.status_code == 204

    def test_bad_filters_and_form_values_never_give_a_500(self, staff, web_server):
        task_id = new_task(claimed_by="wu")
        with sign_in(web_server, "wu") as http:
            token = csrf_of(http.get("/ui").text)
            assert (
                http.get("/ui", params={"sort": "bogus", "cursor": "not-a-cursor", "overdue": "x"}).status_code == 200
            )
            answer = http.post(
                f"/ui/tasks/{task_id}/complete",
                data={
                    "csrf_token": token,
                    "condition": "ok",
                    "restock": "yes",
                    "deduction": "1e999",
                    "version": "x",
                    "unknown": "1",
                },
            )
        assert answer.status_code == 422
        assert "请输入数字" in answer.text

    def test_pages_forbid_framing_and_inline_scripts(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            headers = http.get("/ui").headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"


class TestActions:
    def test_delegating_needs_a_reason_and_a_colleague_with_the_role(self, staff, web_server):
        task_id = new_task(claimed_by="wu")
        with sign_in(web_server, "wu") as http:
            token = csrf_of(http.get(f"/ui/tasks/{task_id}").text)
            refused = http.post(
                f"/ui/tasks/{task_id}/delegate", data={"csrf_token": token, "user": "lin", "reason": ""}
            )
            shown = http.get(f"/ui/tasks/{task_id}").text
            assert "请填写原因。" in shown and "用户 lin 没有处理此任务所需的角色。" in shown
            assert refused.status_code == 303 and _task(task_id).assignee == "wu"
            done = http.post(
                f"/ui/tasks/{task_id}/delegate", data={"csrf_token": token, "user": "wang", "reason": "午休"}
            )
        assert done.status_code == 303 and _task(task_id).assignee == "wang"

    def test_a_bulk_action_without_tasks_says_what_to_do(self, staff, web_server):
        with sign_in(web_server, "zhou") as http:
            token = csrf_of(http.get("/ui/dashboard").text)
            answer = http.post("/ui/dashboard/bulk", data={"csrf_token": token, "action": "claim"})
            bogus = http.post("/ui/dashboard/bulk", data={"csrf_token": token, "action": "explode", "task_id": "x"})
        assert answer.status_code == 422 and "请勾选 1 到 200 个任务。" in answer.text
        assert bogus.status_code == 422 and "请选择认领、指派或释放。" in bogus.text

    def test_a_step_no_longer_defined_is_shown_but_not_submitted(self, staff, web_server):
        task_id = add_task_row(
            instance_id=make_instance(),
            role="warehouse",
            state="claimed",
            assignee="wu",
            created_at=utcnow(),
        )
        with sign_in(web_server, "wu") as http:
            page = http.get(f"/ui/tasks/{task_id}")
            answer = http.post(f"/ui/tasks/{task_id}/complete", data={"csrf_token": csrf_of(page.text)})
            assert page.status_code == 200
            assert answer.status_code == 303 and "流程定义里已没有这一步" in http.get(answer.headers["location"]).text
        assert _task(task_id).state == "claimed"

    def test_an_unknown_page_is_an_html_404(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            missing = http.get("/ui/nothing/here")
            home = http.get("/ui/")
        assert missing.status_code == 404 and "没有这个页面" in missing.text
        assert home.status_code == 303 and home.headers["location"] == "/ui"


class TestRoot:
    def test_the_bare_address_leads_to_the_pages_and_is_not_in_the_api_schema(self, staff, anonymous):
        answer = anonymous.get("/")
        assert answer.status_code == 307 and answer.headers["location"] == "/ui"
        assert anonymous.get("/", follow_redirects=True).url.path == "/ui/login"
        assert "/" not in anonymous.get("/openapi.json").json()["paths"]


class TestLanguage:
    def test_chinese_by_default_and_english_when_the_browser_prefers_it(self, staff, anonymous):
        assert "登录" in anonymous.get("/ui/login").text
        assert 'lang="zh-CN"' in anonymous.get("/ui/login", headers={"Accept-Language": "fr, zh;q=0.5"}).text
        english = anonymous.get("/ui/login", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.8"})
        assert 'lang="en"' in english.text and "Sign in" in english.text

    def test_the_switch_overrides_the_browser_and_is_remembered(self, staff, web_server):
        with sign_in(web_server, "wu", headers={"Accept-Language": "zh-CN"}) as http:
            inbox = http.get("/ui")
            answer = http.post("/ui/lang", data={"csrf_token": csrf_of(inbox.text), "lang": "en", "next": "/ui?mine=1"})
            assert answer.headers["location"] == "/ui?mine=1"
            assert "My inbox" in http.get("/ui").text


class TestDeliveryLog:
    def test_the_dashboard_lists_every_channels_deliveries_with_their_outcome(self, staff, web_server):
        now = utcnow()
        rows = [
            ("dingtalk", "team-dingtalk", {"delivered_at": now}, None),
            (
                "feishu",
                "team-feishu",
                {"failed_at": now, "last_error": "channel 'team-feishu' (feishu) answered code 19021"},
                None,
            ),
            ("email", "mail", {}, None),
        ]
        with session_scope() as session:
            for channel_type, name, outcome, _ in rows:
                payload = {"channel": name, "channel_type": channel_type, "delivery_id": name, "event": "task.overdue"}
                session.add(OutboxMessage(kind=outbox.CHANNEL, payload=payload, attempts=1, **outcome))
            session.add(
                OutboxMessage(
                    kind=outbox.WEBHOOK,
                    payload={
                        "endpoint": "im",
                        "delivery_id": "w1",
                        "event": "task.created",
                        "occurred_at": "",
                        "data": {},
                    },
                )
            )
        with sign_in(web_server, "zhou") as http:
            page = http.get("/ui/dashboard")
        assert page.status_code == 200
        log = page.text.split('id="deliveries"', 1)[1]
        for shown in (
            "钉钉 · team-dingtalk",
            "飞书 · team-feishu",
            "邮件 · mail",
            "Webhook · im",
            "已送达",
            "已放弃",
            "待投递",
        ):
            assert shown in log
        assert "answered code 19021" in log
