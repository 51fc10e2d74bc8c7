"""Each channel against a local receiver that checks it as its vendor documents: signature, payload, answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.contacts import set_contact
from ecomflow.engine.people.principals import SYSTEM, SYSTEM_ACTOR
from ecomflow.engine.reports.daily_report import build_daily_report
from ecomflow.engine.reports.daily_xlsx import XLSX_TYPE, daily_report_xlsx
from ecomflow.engine.tasks.actions import assign_task
from tests.engine.events.conftest import (
    DINGTALK_SECRET,
    FEISHU_SECRET,
    PUBLIC_URL,
    SMTP_PASSWORD,
    Vendors,
    channel_messages,
    deliver_channels,
)
from tests.engine.events.receivers import DINGTALK_TOKEN, FEISHU_HOOK, WECOM_KEY
from tests.factories import make_instance, make_task, make_user


def task_facts(task_id: str) -> dict[str, str]:
    """Return what a message about the task must show: titles, business key, local due time, deep link."""
    definitions = get_definitions()
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        instance = session.get(ProcessInstance, task.instance_id)
        process = definitions.process(task.process_key)
        due = task.due_at.astimezone(ZoneInfo("Asia/Shanghai"))
        return {
            "process": process.label.zh,
            "step": process.step(task.step_key).label.zh,
            "business_key": instance.business_key,
            "due": f"{due:%Y-%m-%d %H:%M}（北京时间）",
            "link": f"{PUBLIC_URL}/ui/tasks/{task.id}",
        }


def assign_to_new_user(task_id: str, *, name: str, **contact: str) -> None:
    """Create a warehouse worker with these contact details and assign the task to them (a manager does)."""
    worker, _ = make_user(name=name, roles=("warehouse",))
    manager, _ = make_user(name=f"boss-{name}", roles=("operations",))
    with session_scope() as session:
        set_contact(session, name=worker.name, principal=SYSTEM, changes=contact)
    with session_scope() as session:
        assign_task(session, task_id=task_id, principal=manager, user=worker.name)


def give_up_after_three(now_step: timedelta = timedelta(hours=1)) -> None:
    """Run the dispatcher three times, an hour apart: past every backoff."""
    start = utcnow()
    for attempt in range(3):
        deliver_channels(now=start + attempt * now_step)


class TestDingTalk:
    def test_a_new_task_arrives_signed_as_markdown_with_its_facts_and_link(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        task_id = make_task()
        assert deliver_channels(now=utcnow()) == 1
        [arrival] = robot.arrivals
        assert arrival.accepted, arrival.answer
        text = arrival.body["markdown"]["text"]
        facts = task_facts(task_id)
        assert arrival.body["markdown"]["title"] == f"【新任务】{facts['process']} · {facts['step']}"
        for fact in facts.values():
            assert fact in text
        assert f"[打开任务]({facts['link']})" in text
        assert arrival.body["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}
        [message] = channel_messages()
        assert (message.attempts, message.delivered_at is not None, message.failed_at) == (1, True, None)

    def test_the_assignee_is_mentioned_by_mobile(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        task_id = make_task()
        configure_channels(channel, routes=[{"events": ["task.assigned"], "channels": [channel["name"]]}])
        assign_to_new_user(task_id, name="wu", mobile="13800000001")
        assert deliver_channels(now=utcnow()) == 1
        [arrival] = robot.accepted()
        assert arrival.body["at"]["atMobiles"] == ["13800000001"]
        assert "@13800000001" in arrival.body["markdown"]["text"] and "处理人：wu" in arrival.body["markdown"]["text"]

    def test_a_wrong_secret_is_refused_with_http_200_and_errcode_retried_then_failed(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None], caplog: pytest.LogCaptureFixture
    ) -> None:
        robot, channel = vendors.dingtalk(secret="SEC-not-the-robots-secret")
        configure_channels(channel, max_attempts=3)
        make_task()
        with caplog.at_level(logging.DEBUG, logger="ecomflow.dispatcher"):
            give_up_after_three()
        assert [a.answer["errcode"] for a in robot.arrivals] == [310000, 310000, 310000]
        [message] = channel_messages()
        assert (message.attempts, message.delivered_at, message.failed_at is not None) == (3, None, True)
        assert "errcode 310000" in message.last_error and "given up after 3 attempts" in message.last_error
        for secret in ("SEC-not-the-robots-secret", DINGTALK_TOKEN):
            assert secret not in message.last_error and secret not in caplog.text

    def test_no_log_line_holds_the_robots_token_or_signature(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None], caplog: pytest.LogCaptureFixture
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        make_task()
        with caplog.at_level(logging.DEBUG):
            deliver_channels(now=utcnow())
        [arrival] = robot.accepted()
        assert "HTTP Request: POST" in caplog.text
        assert DINGTALK_TOKEN not in caplog.text and arrival.query["sign"][0] not in caplog.text

    def test_a_signed_request_carries_a_fresh_millisecond_timestamp(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        make_task()
        before = int(utcnow().timestamp() * 1000)
        deliver_channels(now=utcnow())
        [arrival] = robot.accepted()
        assert before <= int(arrival.query["timestamp"][0]) <= int(utcnow().timestamp() * 1000)
        assert DINGTALK_SECRET not in arrival.raw_query


class TestWeCom:
    def test_markdown_mentions_a_wecom_userid(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.wecom()
        task_id = make_task()
        configure_channels(channel, routes=[{"events": ["task.assigned"], "channels": [channel["name"]]}])
        assign_to_new_user(task_id, name="wu", mobile="13800000001", wecom_id="WuXiaoming")
        deliver_channels(now=utcnow())
        [arrival] = robot.accepted()
        assert arrival.body["msgtype"] == "markdown"
        content = arrival.body["markdown"]["content"]
        assert "<@WuXiaoming>" in content and task_facts(task_id)["link"] in content

    def test_someone_known_by_mobile_only_is_mentioned_in_a_text_message(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.wecom()
        task_id = make_task()
        configure_channels(channel, routes=[{"events": ["task.assigned"], "channels": [channel["name"]]}])
        assign_to_new_user(task_id, name="wu", mobile="13800000001")
        deliver_channels(now=utcnow())
        [arrival] = robot.accepted()
        assert arrival.body["msgtype"] == "text"
        assert arrival.body["text"]["mentioned_mobile_list"] == ["13800000001"]
        assert task_facts(task_id)["link"] in arrival.body["text"]["content"]

    def test_a_wrong_key_is_refused_with_errcode_retried_then_failed(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.wecom(key="not-the-key")
        configure_channels(channel, max_attempts=3)
        make_task()
        give_up_after_three()
        assert [a.answer["errcode"] for a in robot.arrivals] == [93000, 93000, 93000]
        [message] = channel_messages()
        assert message.failed_at is not None and "errcode 93000" in message.last_error
        assert "not-the-key" not in message.last_error and WECOM_KEY not in message.last_error


class TestFeishu:
    def test_a_signed_post_with_its_link_and_an_at_by_open_id(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.feishu()
        task_id = make_task()
        configure_channels(channel, routes=[{"events": ["task.assigned"], "channels": [channel["name"]]}])
        assign_to_new_user(task_id, name="wu", feishu_id="ou_7d8a6e6df7621556ce0d21922b676706")
        deliver_channels(now=utcnow())
        [arrival] = robot.accepted()
        post = arrival.body["content"]["post"]["zh_cn"]
        facts = task_facts(task_id)
        assert post["title"] == f"【任务已分派】{facts['process']} · {facts['step']}"
        elements = [element for paragraph in post["content"] for element in paragraph]
        assert {"tag": "a", "text": "打开任务", "href": facts["link"]} in elements
        assert {"tag": "at", "user_id": "ou_7d8a6e6df7621556ce0d21922b676706", "user_name": "wu"} in elements
        assert any(e["tag"] == "text" and facts["due"] in e["text"] for e in elements)

    def test_a_wrong_secret_is_refused_with_code_19021_retried_then_failed(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.feishu(secret="not-the-bots-secret")
        configure_channels(channel, max_attempts=3)
        make_task()
        give_up_after_three()
        assert [a.answer["code"] for a in robot.arrivals] == [19021, 19021, 19021]
        [message] = channel_messages()
        assert message.failed_at is not None and "code 19021" in message.last_error
        assert FEISHU_HOOK.rsplit("/", 1)[1] not in message.last_error


def daily_report_event(day: str = "2026-11-27") -> None:
    instance_id = make_instance(process="daily_report", params={})
    with session_scope() as session:
        record_event(
            session,
            type="report.daily",
            actor=SYSTEM_ACTOR,
            instance_id=instance_id,
            data={"report_date": day, "done": 3, "open": 1, "overdue": 0},
        )


class TestDailyReportOnRobots:
    def test_a_robot_gets_a_link_to_the_workbook_instead_of_the_file(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel, routes=[{"events": ["report.daily"], "channels": [channel["name"]]}])
        daily_report_event()
        assert deliver_channels(now=utcnow()) == 1
        [arrival] = robot.accepted()
        text = arrival.body["markdown"]["text"]
        assert f"[下载日报表 XLSX]({PUBLIC_URL}/ui/reports/daily/2026-11-27.xlsx)" in text
        assert f"({PUBLIC_URL}/ui/reports/daily/2026-11-27)" in text


class TestEmail:
    def test_the_daily_report_goes_over_starttls_as_text_and_html_to_managers_and_the_list(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        mailbox, channel = vendors.email(to=("team@example.com",))
        configure_channels(channel, routes=[{"events": ["report.daily"], "channels": ["email"]}])
        make_user(name="boss", roles=("operations",))
        make_user(name="wu", roles=("warehouse",))
        with session_scope() as session:
            set_contact(session, name="boss", principal=SYSTEM, changes={"email": "boss@example.com"})
            set_contact(session, name="wu", principal=SYSTEM, changes={"email": "wu@example.com"})
        instance_id = make_instance(process="daily_report", params={})
        summary = {
            "report_date": "2026-11-27",
            "done": 7,
            "open": 2,
            "overdue": 1,
            "on_time_rate": 0.857,
            "gmv": "12345.60",
            "month_attainment": "0.4321",
            "refund_amount": "99.00",
            "signups": 2,
        }
        with session_scope() as session:
            record_event(session, type="report.daily", actor=SYSTEM_ACTOR, instance_id=instance_id, data=summary)
        assert deliver_channels(now=utcnow()) == 1
        assert mailbox.logins == ["ecomflow@example.com"] and mailbox.tls_at_data == [True]
        [(sender, recipients)] = mailbox.envelopes
        assert (sender, sorted(recipients)) == ("ecomflow@example.com", ["boss@example.com", "team@example.com"])
        [email] = mailbox.messages
        assert email["Subject"] == "【日报表】2026-11-27"
        text = email.get_body(preferencelist=("plain",)).get_content()
        html = email.get_body(preferencelist=("html",)).get_content()
        assert "今日完成：7" in text and "准时率：86%" in text and f"{PUBLIC_URL}/ui/reports/daily/2026-11-27" in text
        assert "今日成交额：12345.60" in text and "本月目标完成率：43%" in text and "今日活动报名：2" in text
        assert "<th align='left'>逾期</th><td>1</td>" in html
        # The 日报表 workbook rides along, built from the day's data as the download builds it.
        [attached] = list(email.iter_attachments())
        assert attached.get_filename() == "daily-report-2026-11-27.xlsx"
        assert attached.get_content_type() == XLSX_TYPE
        with session_scope() as session:
            expected = build_daily_report(session, day=date(2026, 11, 27), timezone="Asia/Shanghai", now=utcnow())
        sent = load_workbook(BytesIO(attached.get_content()), read_only=True)
        made = load_workbook(BytesIO(daily_report_xlsx(expected)), read_only=True)
        assert sent.sheetnames == made.sheetnames and len(sent.sheetnames) >= 4
        for name in sent.sheetnames:
            assert list(sent[name].iter_rows(values_only=True)) == list(made[name].iter_rows(values_only=True))
        assert f"{PUBLIC_URL}/ui/reports/daily/2026-11-27.xlsx" in text

    def test_a_wrong_password_is_refused_retried_then_failed(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        mailbox, channel = vendors.email(password="not-the-password", to=("team@example.com",))
        configure_channels(channel, max_attempts=3)
        make_task()
        give_up_after_three()
        assert mailbox.messages == [] and mailbox.logins == []
        [message] = channel_messages()
        assert message.failed_at is not None and "SMTPAuthenticationError 535" in message.last_error
        assert "not-the-password" not in message.last_error and SMTP_PASSWORD not in message.last_error

    def test_an_event_that_names_nobody_with_an_address_queues_no_email(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        _, channel = vendors.email()
        configure_channels(channel)
        make_task()
        assert channel_messages() == []


def test_secrets_never_reach_the_payload(
    clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
) -> None:
    _, dingtalk = vendors.dingtalk()
    _, feishu = vendors.feishu()
    configure_channels(dingtalk, feishu)
    make_task()
    stored = json.dumps([m.payload for m in channel_messages()], ensure_ascii=False)
    assert len(channel_messages()) == 2
    for secret in (DINGTALK_SECRET, FEISHU_SECRET, DINGTALK_TOKEN, FEISHU_HOOK):
        assert secret not in stored
