"""Files in headless Chromium: pick and drop images into a task form, see their thumbnails, review what was made.

Each test saves a screenshot under tests/web/artifacts/.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from playwright.sync_api import expect

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.attachments import reference_attachments
from ecomflow.engine.files.design_archive import archive_creative
from tests.factories import make_attachment
from tests.images import pdf, picture
from tests.web.conftest import new_task
from tests.web.test_pages_in_browser import browser, open_as, session_cookies, shoot

# The width of an <img> once its bytes arrived and decoded (decode() waits for both; it rejects if they fail).
LOADED_WIDTH = "image => image.decode().then(() => image.naturalWidth)"

__all__ = ["browser", "open_as", "session_cookies"]  # the fixtures this module borrows


def _task(task_id: str) -> HumanTask:
    with session_scope() as session:
        return session.get(HumanTask, task_id)


def _drop(page, selector: str, name: str, data: bytes) -> None:
    """Drop a file on an element as a person dragging it from their desktop would."""
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            return transfer;
        }""",
        [name, base64.b64encode(data).decode()],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


class TestUploadingInATaskForm:
    def test_picked_and_dropped_files_show_as_thumbnails_and_are_submitted(self, open_as, staff, tmp_path):
        task_id = new_task(process="page_design", step="design", params={}, claimed_by="mei")
        page = open_as("mei")
        page.goto(f"/ui/tasks/{task_id}")
        source = tmp_path / "首页设计稿.pdf"
        source.write_bytes(pdf("homepage"))
        page.locator('[data-name="design_file"] [data-file-input]').set_input_files(str(source))
        expect(page.locator('[data-name="design_file"] .file-name')).to_have_text("首页设计稿.pdf")
        _drop(page, '[data-name="previews"]', "首页效果图.jpg", picture(1920, 1080))
        thumbnail = page.locator('[data-name="previews"] img.thumb')
        expect(thumbnail).to_have_count(1)
        expect(thumbnail).to_have_attribute("alt", "首页效果图.jpg")
        assert thumbnail.evaluate(LOADED_WIDTH) == 320
        shoot(page, "files-uploaded")
        page.get_by_role("button", name="提交").click()
        expect(page.get_by_role("status")).to_contain_text("已提交")
        task = _task(task_id)
        assert task.state == "completed"
        assert set(task.output) == {"design_file", "previews"} and len(task.output["previews"]) == 1

    def test_an_image_breaking_the_rules_is_refused_naming_the_file(self, open_as, staff, tmp_path):
        task_id = new_task(process="listing_upload", step="prepare_listing", params={}, claimed_by="li")
        page = open_as("li")
        page.goto(f"/ui/tasks/{task_id}")
        small = tmp_path / "small.jpg"
        small.write_bytes(picture(600, 400))
        page.locator('[data-name="main_images"] [data-file-input]').set_input_files(str(small))
        status = page.locator('[data-name="main_images"] [data-upload-status]')
        expect(status).to_contain_text("上传未成功")
        expect(status).to_contain_text("main_images (small.jpg) is 600×400 pixels; it must be at least 800 wide")
        expect(page.locator('[data-name="main_images"] img.thumb')).to_have_count(0)
        shoot(page, "files-refused")


class TestSeeingWhatWasMade:
    def test_the_reviewer_sees_the_designs_thumbnails_and_opens_full_size(self, open_as, staff):
        preview = make_attachment(uploader="mei", data=picture(1920, 1080), name="首页效果图.jpg")
        source = make_attachment(uploader="mei", data=pdf("v1"), name="home.pdf")
        design = {"design_file": source, "previews": [preview]}
        task_id = new_task(process="page_design", step="review", params={}, context={"design": design})
        with session_scope() as session:
            instance_id = session.get(HumanTask, task_id).instance_id
            reference_attachments(session, [("previews[0]", preview), ("design_file", source)], instance_id=instance_id)
        page = open_as("zhou")
        page.goto(f"/ui/tasks/{task_id}")
        link = page.locator(f'a[href="/ui/attachments/{preview}"]').first
        expect(link.locator("img.thumb")).to_be_visible()
        assert link.locator("img.thumb").evaluate(LOADED_WIDTH) == 320
        expect(page.get_by_role("link", name="home.pdf")).to_be_visible()
        shoot(page, "files-review-context")
        full = page.request.get(f"/ui/attachments/{preview}")
        assert full.status == 200 and full.headers["content-type"] == "image/jpeg" and len(full.body()) > 10_000

        page.goto("/ui/dashboard")
        expect(page.locator('[data-testid="instance-images"] img.thumb').first).to_be_visible()
        shoot(page, "files-dashboard")

    def test_the_gallery_shows_approved_creatives_with_their_figures_and_searches_by_sku(self, open_as, staff):
        banner = make_attachment(uploader="mei", data=picture(1920, 600), name="双11海报.jpg")
        task_id = new_task(process="promo_image_design", step="review", params={})
        with session_scope() as session:
            instance_id = session.get(HumanTask, task_id).instance_id
            reference_attachments(session, [("images[0].image", banner)], instance_id=instance_id)
            archive_creative(
                session,
                instance_id=instance_id,
                process_key="promo_image_design",
                title="双11主会场海报",
                campaign="双11大促",
                skus=["TEE-WHITE-M"],
                attachment_ids=[banner],
                figures={"impressions": 21000, "clicks": 630, "click_through_rate": 0.03, "verdict": "keep"},
                approved_by="zhou",
                approved_at=datetime.now(UTC),
            )
        page = open_as("zhou")
        page.goto("/ui/gallery")
        card = page.get_by_test_id("creative").filter(has_text="双11主会场海报")
        expect(card.locator("img.thumb")).to_be_visible()
        expect(card.locator('[data-figure="click_through_rate"]')).to_have_text("3.00%")
        expect(card.locator('[data-figure="verdict"]')).to_have_text("保持")
        shoot(page, "files-gallery")
        page.get_by_label("商品 SKU").fill("NO-SUCH-SKU")
        page.get_by_role("button", name="查找").click()
        expect(page.get_by_test_id("creative")).to_have_count(0)
        page.get_by_label("商品 SKU").fill("TEE-WHITE-M")
        page.get_by_role("button", name="查找").click()
        expect(page.get_by_test_id("creative")).to_have_count(1)
