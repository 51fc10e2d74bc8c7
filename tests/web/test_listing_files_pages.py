"""A published listing's bulk-upload files are offered on its verify task's page and its instance page."""

from __future__ import annotations

import re

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.listing_exports import write_listing_files
from ecomflow.engine.shop.listing_files import TAOBAO_VERSION_LINE
from tests.web.conftest import WebServer, new_task, sign_in

LISTING = {
    "title": "纯棉短袖T恤",
    "category": "T恤",
    "shipping_template": "包邮",
    "go_live_at": "2026-12-05T12:00:00+00:00",
    "skus": [{"sku": "TEE-RED-M", "spec": "红色/M", "stock": 5}],
    "main_images": [],
}


def published_listing() -> tuple[str, str, list[str]]:
    """Write the files on a listing instance and open its verify task holding them, as the flow does."""
    task_id = new_task(process="listing_upload", step="verify_live", params={"sku": "TEE-RED-M"})
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        files = write_listing_files(
            session,
            instance_id=task.instance_id,
            listing=LISTING,
            code="TEE-RED-M",
            prices={"TEE-RED-M": 89},
            timezone="Asia/Shanghai",
        )
        task.context = {"sku": "TEE-RED-M", "catalog": {"channel_ref": "catalog:x", "bulk_upload_files": files}}
        return task_id, task.instance_id, files


def test_the_verify_task_and_the_instance_page_offer_the_files(web_server: WebServer, staff: dict) -> None:
    task_id, instance_id, files = published_listing()
    with sign_in(web_server, "li") as http:
        task_page = http.get(f"/ui/tasks/{task_id}").text
        instance_page = http.get(f"/ui/instances/{instance_id}").text
        download = http.get(f"/ui/attachments/{files[0]}")
    for page in (task_page, instance_page):
        assert re.search(rf'href="/ui/attachments/{files[0]}"[^>]*>TEE-RED-M-taobao.csv<', page), page
        assert re.search(rf'href="/ui/attachments/{files[1]}"[^>]*>TEE-RED-M-jd.xlsx<', page), page
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.content.decode("utf-16").startswith(TAOBAO_VERSION_LINE)


def test_someone_who_may_not_see_the_listing_may_not_download_its_files(web_server: WebServer, staff: dict) -> None:
    _, _, files = published_listing()
    with sign_in(web_server, "wu") as http:
        assert http.get(f"/ui/attachments/{files[0]}").status_code == 404
