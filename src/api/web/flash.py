"""One-time notices shown on the next page after a redirect (claimed, saved, refused), in a signed cookie."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from ecomflow.api.web.auth import COOKIE_PATH, set_cookie
from ecomflow.api.web.signing import sign, unsign

FLASH_COOKIE = "ecf_flash"
_PURPOSE = "flash"


@dataclass(frozen=True)
class Flash:
    """A notice: kind is ok or error; text is already in the page's language."""

    kind: str
    text: str


def set_flash(response: Response, request: Request, flash: Flash) -> None:
    """Show the notice on the next page this browser loads."""
    payload = json.dumps({"kind": flash.kind, "text": flash.text})
    set_cookie(response, request, FLASH_COOKIE, sign(_PURPOSE, payload), max_age=timedelta(minutes=1))


def read_flash(request: Request) -> Flash | None:
    """Return the notice waiting for this request, if a valid one is."""
    payload = unsign(_PURPOSE, request.cookies.get(FLASH_COOKIE))
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        return Flash(kind="error" if data["kind"] == "error" else "ok", text=str(data["text"]))
    except (ValueError, KeyError, TypeError):
        return None


def clear_flash(response: Response) -> None:
    """Forget the notice once shown."""
    response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
