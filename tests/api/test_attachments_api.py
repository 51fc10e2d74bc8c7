"""POST /attachments and GET /attachments/{id}: streamed uploads checked by content, downloads for those who may see."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from ecomflow.engine.db.models import Attachment, AttachmentReference, AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.storage import get_store
from tests.api.conftest import ApiServer, Caller, assert_error, field_names
from tests.factories import make_task
from tests.images import noisy_jpeg, picture, png_bomb, truncated
from tests.served_app import wait_for

Login = Callable[..., Caller]


def upload(caller: Caller, data: bytes, name: str = "photo.jpg", **params: str) -> object:
    return caller.post("/attachments", files={"file": (name, data, "application/octet-stream")}, params=params)


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def spooled() -> list[Path]:
    return list(get_store().spool_dir.glob("upload-*"))


def claimed_listing(caller: Caller) -> str:
    task_id = make_task(process="listing_upload", step="prepare_listing")
    assert caller.post(f"/tasks/{task_id}/claim").status_code == 200
    return task_id


class TestUpload:
    def test_an_image_is_stored_with_its_facts_and_downloads_byte_for_byte(self, login: Login) -> None:
        wang = login("visual", name="wang")
        data = picture(900, 900)
        response = upload(wang, data, "白底主图.jpg")
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["content_type"], body["width"], body["height"], body["size"]) == (
            "image/jpeg",
            900,
            900,
            len(data),
        )
        assert body["filename"] == "白底主图.jpg" and body["uploaded_by"] == "wang"
        download = wang.get(body["url"])
        assert download.status_code == 200 and download.content == data
        assert download.headers["content-type"] == "image/jpeg"
        thumbnail = wang.get(body["thumbnail_url"])
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 320

    def test_the_same_bytes_are_stored_once_but_are_two_attachments(self, login: Login) -> None:
        wang = login("visual", name="wang")
        data = picture(820, 820, product=(10, 120, 10))
        first, second = upload(wang, data).json(), upload(wang, data, "again.jpg").json()
        assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
        blobs = list((get_store().root / "blobs").rglob(first["sha256"]))
        assert len(blobs) == 1

    def test_every_upload_and_download_is_audited_with_who(self, login: Login) -> None:
        wang = login("visual", name="wang")
        body = upload(wang, picture()).json()
        wang.get(body["url"])
        wang.get(body["thumbnail_url"])
        with session_scope() as session:
            events = session.execute(
                select(AuditEvent.type, AuditEvent.actor, AuditEvent.data).where(AuditEvent.type.like("attachment.%"))
            ).all()
        assert [(e.type, e.actor, e.data.get("variant")) for e in events] == [
            ("attachment.uploaded", "wang", None),
            ("attachment.downloaded", "wang", "original"),
            ("attachment.downloaded", "wang", "thumbnail"),
        ]
        assert all(e.data["attachment_id"] == body["id"] for e in events)

    def test_a_pdf_is_a_file_without_thumbnail(self, login: Login) -> None:
        wang = login("visual", name="wang")
        body = upload(wang, b"%PDF-1.4\n" + b"x" * 1000, "spec.pdf").json()
        assert (body["content_type"], body["thumbnail_url"], body["width"]) == ("application/pdf", None, None)
        assert_error(wang.get(f"/attachments/{body['id']}/thumbnail"), 404, "NotFound")


class TestUploadsThatAreRefused:
    """Fuzzing by hand: each bad upload is a clear refusal naming the file and the rule, and leaves nothing behind."""

    @pytest.fixture(autouse=True)
    def _nothing_left(self, clean_db: str) -> Iterator[None]:
        before = count(Attachment)
        yield
        assert count(Attachment) == before and spooled() == []

    def test_an_empty_file(self, login: Login) -> None:
        body = assert_error(upload(login("visual"), b"", "empty.jpg"), 422, "ValidationFailed")
        assert body["fields"][0]["rule"] == "content_type" and "empty.jpg" in body["fields"][0]["message"]

    def test_a_wrong_type_behind_a_right_name(self, login: Login) -> None:
        body = assert_error(
            upload(login("visual"), b"MZ\x90\x00 not an image at all", "photo.jpg"), 422, "ValidationFailed"
        )
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("file", "content_type")]
        assert "photo.jpg" in body["detail"]

    def test_a_pdf_named_jpg_for_an_image_field(self, login: Login) -> None:
        li = login("product", name="li")
        task_id = claimed_listing(li)
        response = upload(li, b"%PDF-1.7\n" + b"0" * 500, "main.jpg", task_id=task_id, field="main_images")
        body = assert_error(response, 422, "ValidationFailed")
        assert body["fields"][0]["rule"] == "content_type" and "PDF document" in body["fields"][0]["message"]

    def test_a_truncated_image(self, login: Login) -> None:
        body = assert_error(
            upload(login("visual"), truncated(noisy_jpeg(400, 400)), "cut.jpg"), 422, "ValidationFailed"
        )
        assert body["fields"][0]["rule"] == "image" and "cut.jpg" in body["fields"][0]["message"]

    def test_an_image_bomb_is_refused_before_decoding(self, login: Login) -> None:
        body = assert_error(upload(login("visual"), png_bomb(), "bomb.png"), 422, "ValidationFailed")
        assert body["fields"][0]["rule"] == "pixels" and "bomb.png" in body["fields"][0]["message"]

    def test_an_image_just_over_the_pixel_limit_is_refused_by_its_header(self, login: Login) -> None:
        body = assert_error(upload(login("visual"), png_bomb(9000, 9000), "big.png"), 422, "ValidationFailed")
        assert body["fields"][0]["rule"] == "pixels" and "big.png declares 9000×9000 pixels" in body["detail"]

    def test_an_oversized_file_for_a_field_is_stopped_while_it_streams(self, login: Login) -> None:
        li = login("product", name="li")
        task_id = claimed_listing(li)
        big = noisy_jpeg(1800, 1800)
        assert len(big) > 3 * 1024 * 1024

        def chunks() -> Iterator[bytes]:
            boundary = b"--b0undary"
            yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
            for start in range(0, len(big), 256 * 1024):
                yield big[start : start + 256 * 1024]
            yield b"\r\n" + boundary + b"--\r\n"

        response = li.post(
            "/attachments",
            params={"task_id": task_id, "field": "main_images"},
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        body = assert_error(response, 422, "ValidationFailed")
        assert body["fields"][0]["rule"] == "max_size" and "big.jpg is larger than 3 MB" in body["detail"]

    def test_a_body_declared_over_the_upload_limit_is_a_413_before_it_is_read(
        self, login: Login, api_server: ApiServer
    ) -> None:
        caller = login("visual")
        host, port = api_server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(
                b"POST /attachments HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                + f"Authorization: Bearer {caller.token}\r\nContent-Length: {10**10}\r\n\r\n".encode()
            )
            answer = b""
            # Headers and body may come in separate packets: read until the error body is there or the server closes.
            while b"PayloadTooLarge" not in answer and (chunk := conn.recv(4096)):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413") and b"PayloadTooLarge" in answer

    def test_an_upload_cut_off_mid_stream_leaves_no_attachment_and_no_temp_file(
        self, login: Login, api_server: ApiServer
    ) -> None:
        caller = login("visual")
        host, port = api_server.url.removeprefix("http://").split(":")
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="half.jpg"\r\n\r\n' + picture()[:4000]
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(
                b"POST /attachments HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                + f"Authorization: Bearer {caller.token}\r\nContent-Length: 500000\r\n\r\n".encode()
                + part
            )
            wait_for(lambda: len(spooled()) == 1, timeout=10, what="the upload's temp file")
        # The client is gone mid-body: the server drops what it had.
        wait_for(lambda: spooled() == [], timeout=10, what="the temp file's removal")
        wait_for(api_server.is_idle, timeout=10, what="the server to finish the request")

    def test_an_image_breaking_the_fields_rules_names_each_rule(self, login: Login) -> None:
        li = login("product", name="li")
        task_id = claimed_listing(li)
        response = upload(li, picture(700, 500), "small.jpg", task_id=task_id, field="main_images")
        body = assert_error(response, 422, "ValidationFailed")
        assert [f["rule"] for f in body["fields"]] == ["min_width", "min_height", "square"]
        assert all("small.jpg" in f["message"] for f in body["fields"])

    def test_no_file_part(self, login: Login) -> None:
        response = login("visual").post("/attachments", files={"other": ("a.jpg", picture(), "image/jpeg")})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["file"]

    def test_not_multipart(self, login: Login) -> None:
        response = login("visual").post("/attachments", content=picture(), headers={"Content-Type": "image/jpeg"})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["body"]

    def test_a_field_of_a_task_one_may_not_see(self, login: Login) -> None:
        task_id = make_task(process="listing_upload", step="prepare_listing")
        response = upload(login("warehouse"), picture(), task_id=task_id, field="main_images")
        assert_error(response, 404, "NotFound")

    def test_a_field_that_takes_no_files(self, login: Login) -> None:
        li = login("product", name="li")
        response = upload(li, picture(), task_id=claimed_listing(li), field="title")
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["field"]


class TestWhoMayDownload:
    def test_an_unused_upload_is_its_uploaders_alone(self, login: Login) -> None:
        wang, boss = login("visual", name="wang"), login("owner", name="boss")
        body = upload(wang, picture()).json()
        assert wang.get(body["url"]).status_code == 200
        for other in (boss, login("visual", name="zhao")):
            assert_error(other.get(body["url"]), 404, "NotFound")
            assert_error(other.get(body["thumbnail_url"]), 404, "NotFound")

    def test_a_used_file_is_for_whoever_may_see_its_instance(self, login: Login) -> None:
        li, ops, shop = login("product", name="li"), login("operations", name="ops"), login("warehouse", name="wu")
        colleague = login("product", name="liu")
        task_id = claimed_listing(li)
        ids = [upload(li, picture(800 + n, 800 + n), f"{n}.jpg").json()["id"] for n in range(5)]
        detail = upload(li, picture(790, 1200), "detail.jpg").json()["id"]
        data = {
            "title": "纯棉T恤",
            "category": "T恤",
            "shipping_template": "包邮",
            "dispatch_within_hours": 48,
            "price": 99,
            "skus": [{"sku": "TEE-1", "stock": 5}],
            "main_images": ids,
            "detail_module": [detail],
            "go_live_at": "2026-12-20T10:00:00+08:00",
        }
        assert li.post(f"/tasks/{task_id}/complete", json={"data": data}).status_code == 200, "complete"
        assert count(AttachmentReference) == 6
        for reader in (li, ops, colleague):
            assert reader.get(f"/attachments/{ids[0]}").status_code == 200, reader.name
        assert_error(shop.get(f"/attachments/{ids[0]}"), 404, "NotFound")

    def test_a_missing_attachment(self, login: Login) -> None:
        assert_error(login("owner").get("/attachments/00000000-0000-0000-0000-000000000000"), 404, "NotFound")


class TestCompletingWithFiles:
    def test_the_first_main_image_needs_a_white_background_and_nothing_is_saved(self, login: Login) -> None:
        li = login("product", name="li")
        task_id = claimed_listing(li)
        grey = upload(li, picture(800, 800, background=(120, 120, 120)), "grey.jpg").json()["id"]
        white = upload(li, picture(800, 800), "white.jpg").json()["id"]
        more = [upload(li, picture(800, 800), f"more-{n}.jpg").json()["id"] for n in range(3)]  # 5 main images
        detail = upload(li, picture(790, 1200), "detail.jpg").json()["id"]
        data = {
            "title": "纯棉T恤",
            "category": "T恤",
            "shipping_template": "包邮",
            "dispatch_within_hours": 48,
            "price": 99,
            "skus": [{"sku": "TEE-1", "stock": 5}],
            "main_images": [grey, white, *more],
            "detail_module": [detail],
            "go_live_at": "2026-12-20T10:00:00+08:00",
        }
        body = assert_error(li.post(f"/tasks/{task_id}/complete", json={"data": data}), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("main_images[0]", "white_background")]
        assert "grey.jpg" in body["fields"][0]["message"] and count(AttachmentReference) == 0
        data["main_images"] = [white, grey, *more]
        assert li.post(f"/tasks/{task_id}/complete", json={"data": data}).status_code == 200

    def test_someone_elses_upload_cannot_be_put_in_a_form(self, login: Login) -> None:
        li, liu = login("product", name="li"), login("product", name="liu")
        task_id = claimed_listing(li)
        theirs = upload(liu, picture(), "theirs.jpg").json()["id"]
        mine = [upload(li, picture(), f"mine-{n}.jpg").json()["id"] for n in range(4)]
        data = {
            "title": "纯棉T恤",
            "category": "T恤",
            "shipping_template": "包邮",
            "dispatch_within_hours": 48,
            "price": 99,
            "skus": [{"sku": "TEE-1", "stock": 5}],
            "main_images": [theirs, *mine],
            "detail_module": [theirs],
            "go_live_at": "2026-12-20T10:00:00+08:00",
        }
        body = assert_error(li.post(f"/tasks/{task_id}/complete", json={"data": data}), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [
            ("main_images[0]", "attachment"),
            ("detail_module[0]", "attachment"),
        ]
