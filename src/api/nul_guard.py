"""Refuse the NUL character anywhere in a request: PostgreSQL text cannot hold it (it was a 500, found by fuzzing)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecomflow.api.errors import error_body
from ecomflow.api.uploads import is_upload_path

RULE = "no_nul"
MESSAGE = "must not contain the NUL character (U+0000)"
# A JSON \u0000 escape: an odd number of backslashes before "u0000" (an even number escapes the backslash itself).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class NulRefused(HTTPException):
    """A 422 naming where the NUL character was."""

    def __init__(self, field: str) -> None:
        super().__init__(422, f"{field}: {MESSAGE}")
        self.fields = [{"field": field, "rule": RULE, "message": f"{field} {MESSAGE}"}]


class RefuseNul:
    """Check the path and query at once, and the body once it has all arrived (bodies are size-limited before this)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
            # Out here no exception handler runs yet: answer directly.
            refused = NulRefused("url")
            body = error_body("ValidationFailed", str(refused.detail), refused.fields)
            await JSONResponse(body, status_code=422)(scope, receive, send)
            return
        if is_upload_path(scope.get("path", "")):
            # A file's bytes may hold NUL; it is stored as bytes, and its name is cleaned of control characters.
            await self.app(scope, receive, send)
            return
        body = bytearray()
        # The web pages post form-encoded bodies, where a NUL arrives as %00.
        form_encoded = any(
            name == b"content-type" and value.startswith(b"application/x-www-form-urlencoded")
            for name, value in scope.get("headers", [])
        )

        async def checked_receive() -> Message:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body", False) and (
                b"\x00" in body or _JSON_NUL.search(body) or (form_encoded and b"%00" in body)
            ):
                raise NulRefused(_field_with_nul(bytes(body)))
            return message

        await self.app(scope, checked_receive, send)


def _field_with_nul(body: bytes) -> str:
    """Return the dotted path of the first JSON string holding a NUL, or "body"."""
    try:
        return _find(json.loads(body), "body") or "body"
    except (ValueError, RecursionError):
        return "body"


def _find(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key!r}"
        found = _find(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found:
            return found
    return None
