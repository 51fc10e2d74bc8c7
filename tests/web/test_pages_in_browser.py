"""The pages in headless Chromium.

Sign in, claim, fill a form (fixing its errors), approve, reassign, bulk, language, phone width, maps.

Each test saves a screenshot under tests/web/artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.children import start_child_once
from tests.web.conftest import ARTIFACTS, CHROMIUM, PASSWORD, WebServer, new_task, sign_in

PHONE = {"width": 375, "height": 740}
DESK = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium (installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def session_cookies(web_server: WebServer, staff: Any) -> Callable[[str], list[dict[str, Any]]]:
    """Sign each user in once per module (scrypt is slow on purpose) and hand out their cookies."""
    signed_in: dict[str, list[dict[str, Any]]] = {}

    def cookies_of(name: str) -> list[dict[str, Any]]:
        if name not in signed_in:
            with sign_in(web_server, name) as http:
                signed_in[name] = [
                    {"name": cookie.name, "value": cookie.value, "domain": "127.0.0.1", "path": "/ui"}
                    for cookie in http.cookies.jar
                ]
        return signed_in[name]

    return cookies_of


@pytest.fixture
def open_as(browser: Browser, web_server: WebServer, session_cookies) -> Iterator[Callable[..., Page]]:
    """Open a browser tab signed in as a user: open_as("wu", locale="en-US", viewport=PHONE)."""
    contexts: list[BrowserContext] = []

    def open_page(name: str | None, *, locale: str = "zh-CN", viewport: dict[str, int] = DESK) -> Page:
        context = browser.new_context(locale=locale, viewport=viewport, base_url=web_server.url)
        contexts.append(context)
        if name is not None:
            context.add_cookies(session_cookies(name))
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def shoot(page: Page, name: str) -> None:
    """Save a full-page screenshot for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _field(page: Page, path: str):
    return page.locator(f'[data-field="{path}"]').first


class TestSignIn:
    def test_a_wrong_password_is_refused_and_the_right_one_opens_the_inbox(self, open_as, staff):
        page = open_as(None)
        page.goto("/ui")
        expect(page).to_have_url("/ui/login?next=%2Fui")
        page.get_by_label("用户名").fill("wu")
        page.get_by_label("密码").fill("wrong-password")
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("alert")).to_have_text("用户名或密码错误。")
        shoot(page, "sign-in-wrong-password")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("我的待办")
        shoot(page, "inbox-after-sign-in")


class TestInbox:
    def test_claiming_moves_a_task_from_the_queue_to_my_tasks(self, open_as, staff):
        task_id = new_task()
        page = open_as("wu")
        page.goto("/ui")
        row = page.locator(f'section:has(#queue-heading) tr[data-task-id="{task_id}"]')
        expect(row).to_contain_text("验货")
        row.get_by_role("button", name="认领").click()
        expect(page.get_by_role("status")).to_have_text("已认领：验货")
        expect(page.locator(f'section:has(#mine-heading) tr[data-task-id="{task_id}"]')).to_be_visible()
        assert _task(task_id).assignee == "wu"
        shoot(page, "inbox-claimed")

    def test_a_new_task_appears_without_reloading(self, open_as, staff):
        page = open_as("wang")
        page.goto("/ui")
        # Poll every 200 ms from now on (a tab coming back into view restarts the poll with the new pace).
        page.evaluate("""() => {
            window.notReloaded = true;
            document.querySelector('#inbox-sections').dataset.pollMs = '200';
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        task_id = new_task()
        expect(page.locator(f'tr[data-task-id="{task_id}"]')).to_be_visible(timeout=10_000)
        assert page.evaluate("() => window.notReloaded") is True
        shoot(page, "inbox-live-refresh")

    def test_overdue_and_at_risk_tasks_carry_badges(self, open_as, staff):
        task_id = new_task()
        with session_scope() as session:
            task = session.get(HumanTask, task_id)
            task.due_at = task.created_at.replace(year=task.created_at.year - 1)
            task.at_risk = True
        page = open_as("wu")
        page.goto("/ui?overdue=1")
        row = page.locator(f'tr[data-task-id="{task_id}"]')
        expect(row.locator(".badge-overdue")).to_have_text("已超时")
        expect(row.locator(".badge-risk")).to_have_text("有超时风险")


class TestTaskForm:
    def test_an_error_shows_next_to_its_field_until_it_is_fixed(self, open_as, staff):
        task_id = new_task(claimed_by="wu")
        page = open_as("wu")
        page.goto(f"/ui/tasks/{task_id}")
        page.get_by_label("商品状况").select_option("ok")
        page.get_by_label("损坏扣款 (元)").fill("五块")
        page.get_by_role("button", name="提交").click()
        expect(_field(page, "restock").locator(".field-error")).to_have_text("此项必填。")
        expect(_field(page, "deduction").locator(".field-error")).to_have_text("请输入数字。")
        expect(page.get_by_label("损坏扣款 (元)")).to_have_value("五块")
        shoot(page, "task-form-errors")
        page.get_by_label("是否入库").select_option("yes")
        page.get_by_label("损坏扣款 (元)").fill("5")
        page.get_by_role("button", name="提交").click()
        expect(page.get_by_role("status")).to_have_text("已提交：验货")
        task = _task(task_id)
        assert task.state == "completed"
        assert task.output == {"condition": "ok", "restock": "yes", "deduction": 5}

    def test_lists_of_rows_nested_groups_and_choices(self, open_as, staff):
        task_id = new_task(process="themed_campaign_plan", step="draft_campaign", params={}, claimed_by="zhou")
        page = open_as("zhou")
        page.goto(f"/ui/tasks/{task_id}")
        page.locator("#f-theme").fill("双十二 暖冬")
        page.locator("#f-starts_on").fill("2026-12-10")
        page.locator("#f-ends_on").fill("2026-12-12")
        page.locator("#f-audience-gender").select_option("female")
        page.locator("#f-audience-age_min").fill("18")
        page.locator("#f-audience-age_max").fill("35")
        page.get_by_label("天猫").check()
        page.get_by_label("抖音").check()
        page.locator("#f-skus-0--sku").fill("TEE-1")
        page.locator("#f-skus-0--online_price").fill("0")
        skus = _field(page, "skus")
        for _ in range(2):
            skus.get_by_role("button", name="添加一行（活动商品）").click()
        page.locator("#f-skus-1--sku").fill("TEE-2")
        page.locator("#f-skus-1--online_price").fill("159")
        skus.get_by_role("button", name="删除 活动商品 3").click()
        page.locator("#f-budget").fill("20000")
        _field(page, "creatives").get_by_role("button", name="添加一行（需要的促销图片）").click()
        page.locator("#f-creatives-0--purpose").fill("直通车主图")
        page.locator("#f-creatives-0--sizes-0-").fill("800x800")
        _field(page, "creatives[0].sizes").get_by_role("button", name="添加一行（尺寸）").click()
        page.locator("#f-creatives-0--sizes-1-").fill("big")
        page.locator("#f-creatives-0--deadline").fill("2026-12-05")
        page.get_by_role("button", name="提交").click()

        expect(_field(page, "skus[0].online_price").locator(".field-error")).to_have_text("不能小于 0.01。")
        expect(_field(page, "creatives[0].sizes[1]").locator(".field-error")).to_contain_text("格式不符合要求")
        expect(page.locator("[data-error-summary]")).to_contain_text("活动商品 · 第 1 行 · 活动价")
        shoot(page, "task-form-list-errors")
        page.locator("#f-skus-0--online_price").fill("179")
        page.locator("#f-creatives-0--sizes-1-").fill("750x1000")
        page.get_by_role("button", name="提交").click()
        expect(page.get_by_role("status")).to_have_text("已提交：制定活动方案")
        assert _task(task_id).output == {
            "theme": "双十二 暖冬",
            "starts_on": "2026-12-10",
            "ends_on": "2026-12-12",
            "audience": {"gender": "female", "age_min": 18, "age_max": 35},
            "channels": ["tmall", "douyin"],
            "skus": [
                {"sku": "TEE-1", "online_price": 179},
                {"sku": "TEE-2", "online_price": 159},
            ],
            "budget": 20000,
            "creatives": [{"purpose": "直通车主图", "sizes": ["800x800", "750x1000"], "deadline": "2026-12-05"}],
        }

    def test_an_approval_needs_a_comment_to_reject_and_shows_the_context(self, open_as, staff):
        verdict = {"eligible": False, "days_since_delivery": 9, "reasons": ["delivered 9 days ago"]}
        task_id = new_task(step="cs_review", context={"policy": verdict}, claimed_by="lin")
        page = open_as("lin")
        page.goto(f"/ui/tasks/{task_id}")
        context = page.locator("section:has(#context-heading)")
        expect(context).to_contain_text("符合七日无理由")
        expect(context).to_contain_text("尺码不合适")  # the return's reason, from the instance's params
        page.get_by_label("添加评论").fill("客户说包装已拆")
        page.get_by_role("button", name="添加评论").click()
        expect(page.locator("ol.comments")).to_contain_text("客户说包装已拆")
        page.get_by_role("button", name="驳回").click()
        expect(_field(page, "comment").locator(".field-error")).to_have_text("驳回时必须填写审批意见。")
        shoot(page, "approval-reject-needs-comment")
        page.get_by_label("审批意见").fill("超过七天")
        page.get_by_role("button", name="驳回").click()
        expect(page.get_by_role("status")).to_have_text("已提交：客服审核")
        assert _task(task_id).output == {"decision": "reject", "comment": "超过七天"}


class TestManager:
    def test_a_manager_reassigns_with_a_reason(self, open_as, staff):
        task_id = new_task(claimed_by="wu")
        page = open_as("zhou")
        page.goto(f"/ui/tasks/{task_id}")
        page.locator("#assign-user").fill("wang")
        page.get_by_role("button", name="重新指派").click()
        expect(page.get_by_role("alert")).to_have_text("请填写原因。")
        page.locator("#assign-user").fill("wang")
        page.locator("#assign-reason").fill("吴师傅去盘点了")
        page.get_by_role("button", name="重新指派").click()
        expect(page.get_by_role("status")).to_have_text("已指派给 wang。")
        expect(page.get_by_test_id("task-assignee")).to_have_text("wang")
        expect(page.locator("ol.history")).to_contain_text("吴师傅去盘点了")
        shoot(page, "manager-reassigned")

    def test_bulk_results_are_shown_per_task(self, open_as, staff):
        warehouse_open, warehouse_claimed = new_task(), new_task(claimed_by="wu")
        service = new_task(step="await_parcel")
        page = open_as("zhou")
        page.goto("/ui/dashboard")
        for task_id in (warehouse_open, warehouse_claimed, service):
            page.locator(f"#select-{task_id}").check()
        page.get_by_label("操作", exact=True).select_option("assign")
        page.locator("#bulk-user").fill("wang")
        page.locator("#bulk-reason").fill("rebalance")
        page.get_by_role("button", name="执行").click()
        results = page.locator("#bulk-results")
        expect(results.locator(f'tr[data-result-task-id="{warehouse_open}"]')).to_contain_text("成功")
        expect(results.locator(f'tr[data-result-task-id="{warehouse_claimed}"]')).to_contain_text("成功")
        expect(results.locator(f'tr[data-result-task-id="{service}"]')).to_contain_text(
            "用户 wang 没有处理此任务所需的角色"
        )
        assert _task(warehouse_claimed).assignee == "wang" and _task(service).assignee is None
        shoot(page, "dashboard-bulk-results")

    def test_the_dashboard_shows_workload_kpis_and_instances(self, open_as, staff):
        new_task()
        page = open_as("zhou")
        page.goto("/ui/dashboard")
        expect(page.locator("section:has(#workload-heading) svg.bar-chart").first).to_be_visible()
        expect(page.locator("section:has(#workload-heading)")).to_contain_text("仓储物流")
        expect(page.locator("section:has(#instances-heading)")).to_contain_text("售后退换货流程")
        expect(page.locator("section:has(#kpi-heading)")).to_contain_text("准时率")


class TestLanguage:
    def test_switching_to_english_and_back(self, open_as, staff):
        task_id = new_task()
        page = open_as("wu")
        page.goto("/ui")
        row = page.locator(f'tr[data-task-id="{task_id}"]')
        expect(page.get_by_role("heading", level=1)).to_have_text("我的待办")
        expect(row).to_contain_text("验货")
        expect(row).to_contain_text("售后退换货流程")
        shoot(page, "language-zh")
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("My inbox")
        expect(row).to_contain_text("Inspect the parcel")
        expect(row).to_contain_text("Returns and exchanges")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        shoot(page, "language-en")
        page.get_by_test_id("lang-switch").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("我的待办")

    def test_an_english_browser_gets_english_labels_from_flows_yaml(self, open_as, staff):
        task_id = new_task(claimed_by="wang")
        page = open_as("wang", locale="en-US")
        page.goto(f"/ui/tasks/{task_id}")
        expect(page.get_by_label("Condition")).to_be_visible()
        expect(page.get_by_label("Damage deduction (CNY)")).to_be_visible()


class TestPhoneWidth:
    @staticmethod
    def assert_fits(page: Page, name: str) -> None:
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, name)

    def test_the_inbox_fits_a_phone(self, open_as, staff):
        new_task(claimed_by="wu")
        page = open_as("wu", viewport=PHONE)
        page.goto("/ui")
        expect(page.locator("tr[data-task-id]").first).to_be_visible()
        self.assert_fits(page, "phone-inbox")

    def test_a_task_form_with_its_errors_fits_a_phone(self, open_as, staff):
        task_id = new_task(process="themed_campaign_plan", step="draft_campaign", params={}, claimed_by="zhou")
        page = open_as("zhou", viewport=PHONE)
        page.goto(f"/ui/tasks/{task_id}")
        page.get_by_role("button", name="提交").click()
        expect(page.locator("[data-error-summary]")).to_be_visible()
        self.assert_fits(page, "phone-task-form-errors")

    def test_the_dashboard_fits_a_phone(self, open_as, staff):
        page = open_as("zhou", viewport=PHONE)
        page.goto("/ui/dashboard")
        expect(page.locator("svg.bar-chart").first).to_be_visible()
        self.assert_fits(page, "phone-dashboard")


def _instance_of(task_id: str) -> str:
    return _task(task_id).instance_id


def _csp_errors(page: Page) -> list[str]:
    """Collect the console's Content-Security-Policy complaints of a tab from now on."""
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None
    )
    return errors


class TestProcessMaps:
    def test_the_inbox_row_leads_to_the_instance_page_with_its_path(self, open_as, staff):
        task_id = new_task(claimed_by="wu")
        page = open_as("wu")
        blocked = _csp_errors(page)
        page.goto("/ui")
        page.locator(f'tr[data-task-id="{task_id}"] [data-testid="instance-link"]').click()
        expect(page).to_have_url(f"/ui/instances/{_instance_of(task_id)}")
        path = page.get_by_test_id("instance-path")
        inspect = path.locator('g[data-step="inspect"]')
        expect(inspect).to_have_attribute("data-state", "current")
        expect(inspect).to_contain_text("wu 处理中")
        expect(path.locator('g[data-step="refund"]')).to_have_attribute("data-state", "pending")
        box = inspect.locator("rect").first.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 40  # drawn, not just present
        expect(page.get_by_test_id("instance-tasks")).to_contain_text("验货")
        assert blocked == []
        shoot(page, "instance-path")

    def test_the_task_page_links_its_case_and_a_parent_links_its_children(self, open_as, staff):
        task_id = new_task(claimed_by="wu")
        page = open_as("zhou")
        page.goto(f"/ui/tasks/{task_id}")
        page.get_by_test_id("instance-link").click()
        expect(page).to_have_url(f"/ui/instances/{_instance_of(task_id)}")
        parent = _instance_of(
            new_task(
                process="product_photo_shoot",
                step="request",
                params={"products": [{"product": "TEE", "skus": ["TEE-1"]}]},
            )
        )
        child = _start_child(parent)
        page.goto(f"/ui/instances/{parent}")
        expect(page.get_by_test_id("instance-path").locator('g[data-step="listing_modules"]')).to_have_attribute(
            "data-state", "done"
        )
        page.get_by_test_id("children").get_by_role("link").first.click()
        expect(page).to_have_url(f"/ui/instances/{child}")
        expect(page.get_by_test_id("parent-link")).to_be_visible()

    def test_a_case_its_viewer_may_not_see_is_a_404_page(self, open_as, staff):
        task_id = new_task()
        page = open_as("lin")
        answer = page.goto(f"/ui/instances/{_instance_of(task_id)}")
        assert answer is not None and answer.status == 404

    def test_the_process_map_for_everyone_and_the_heat_view_for_managers(self, open_as, staff):
        new_task()
        manager = open_as("zhou", locale="en-US")
        blocked = _csp_errors(manager)
        manager.goto("/ui/processes")
        manager.get_by_role("link", name="Returns and exchanges").click()
        expect(manager).to_have_url("/ui/processes/returns_exchange")
        steps = len(get_definitions().process("returns_exchange").steps)
        expect(manager.get_by_test_id("process-map").locator("g[data-step]")).to_have_count(steps)
        heat = manager.get_by_test_id("heat-map").locator('g[data-step="inspect"]')
        expect(heat).to_contain_text("open")
        expect(manager.get_by_test_id("versions").locator("tr[data-version]")).to_have_count(1)
        assert blocked == []
        shoot(manager, "process-map-heat")
        worker = open_as("wu")
        worker.goto("/ui/processes/returns_exchange")
        expect(worker.get_by_test_id("process-map")).to_be_visible()
        expect(worker.get_by_test_id("heat-map")).to_have_count(0)

    def test_the_instance_page_fits_a_phone(self, open_as, staff):
        task_id = new_task(claimed_by="wu")
        page = open_as("wu", viewport=PHONE)
        page.goto(f"/ui/instances/{_instance_of(task_id)}")
        expect(page.get_by_test_id("instance-path")).to_be_visible()
        TestPhoneWidth.assert_fits(page, "phone-instance-path")


def _start_child(parent_id: str) -> str:
    with session_scope() as session:
        return start_child_once(
            session,
            definitions=get_definitions(),
            parent_id=parent_id,
            step_key="listing_modules",
            index=0,
            process_key="listing_module_production",
            params={"sku": "TEE-1", "photo_archive": "archive://1"},
        )
