"""HMAC-signed cookie values, keyed by a random key kept in the data directory."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from ecomflow.engine.config import get_settings

KEY_FILE_NAME = "web-signing.key"


@lru_cache(maxsize=1)
def signing_key() -> bytes:
    """Return the key that signs web cookies: the configured secret, else a key file made (mode 0600) on first use."""
    configured = get_settings().web_secret
    if configured is not None:
        # Several API replicas on several machines must share one key; a data-dir file is per machine.
        return hashlib.sha256(configured.get_secret_value().encode()).digest()
    return _read_or_create_key(get_settings().data_dir / KEY_FILE_NAME)


def _read_or_create_key(path: Path) -> bytes:
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32))
    try:
        # link() refuses an existing name: when two processes race, both end up reading the winner's key.
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return bytes.fromhex(path.read_text().strip())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(purpose: str, message: str) -> str:
    """Return the URL-safe HMAC-SHA256 of a message for one purpose (a session never passes as a flash)."""
    digest = hmac.new(signing_key(), f"{purpose}\0{message}".encode(), hashlib.sha256).digest()
    return _encode(digest)


def sign(purpose: str, payload: str) -> str:
    """Return the payload with its signature, fit for a cookie."""
    body = _encode(payload.encode())
    return f"{body}.{mac(purpose, body)}"


def unsign(purpose: str, value: str | None) -> str | None:
    """Return the payload of a value this server signed for the purpose, or None for anything else."""
    if not value or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    if not hmac.compare_digest(signature.encode(), mac(purpose, body).encode()):
        return None
    try:
        return _decode(body).decode()
    except (ValueError, UnicodeDecodeError):
        return None
