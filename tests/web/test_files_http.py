"""The pages' upload and download routes over HTTP: the session cookie signs in, the CSRF header is required."""

from __future__ import annotations

from tests.images import picture
from tests.web.conftest import csrf_of, new_task, sign_in


class TestPageUploads:
    def test_an_upload_needs_the_sessions_csrf_token(self, web_server, staff):
        task_id = new_task(process="listing_upload", step="prepare_listing", params={}, claimed_by="li")
        with sign_in(web_server, "li") as http:
            csrf = csrf_of(http.get(f"/ui/tasks/{task_id}").text)
            files = {"file": ("白底.jpg", picture(), "image/jpeg")}
            params = {"task_id": task_id, "field": "main_images"}
            assert http.post("/ui/attachments", params=params, files=files).status_code == 403
            answer = http.post("/ui/attachments", params=params, files=files, headers={"X-CSRF-Token": csrf})
            assert answer.status_code == 201, answer.text
            uploaded = answer.json()
            assert uploaded["url"] == f"/ui/attachments/{uploaded['id']}" and uploaded["size_text"] == "800×800"
            assert http.get(uploaded["thumbnail_url"]).headers["content-type"] == "image/jpeg"
        with sign_in(web_server, "mei") as other:
            assert other.get(uploaded["url"]).status_code == 404

    def test_a_refused_upload_says_why_in_the_pages_language(self, web_server, staff):
        task_id = new_task(process="listing_upload", step="prepare_listing", params={}, claimed_by="li")
        with sign_in(web_server, "li") as http:
            csrf = csrf_of(http.get(f"/ui/tasks/{task_id}").text)
            answer = http.post(
                "/ui/attachments",
                params={"task_id": task_id, "field": "main_images"},
                files={"file": ("wide.jpg", picture(1200, 800), "image/jpeg")},
                headers={"X-CSRF-Token": csrf},
            )
        assert answer.status_code == 422
        body = answer.json()
        assert [f["rule"] for f in body["fields"]] == ["square"]
        assert body["message"] == "上传未成功：main_images (wide.jpg) is 1200×800 pixels; it must be square"
