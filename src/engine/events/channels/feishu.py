"""Feishu custom bot (飞书自定义机器人): signed rich-text (post) messages that @-mention by open_id.

The rules, from Feishu's custom bot guide (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot):
- 签名校验: timestamp + "\\n" + secret is the HMAC-SHA256 *key*, over an empty message; the digest is
  Base64-encoded; `timestamp` (seconds, within an hour of now) and `sign` go in the JSON body.
- post: {"msg_type": "post", "content": {"post": {"zh_cn": {"title", "content": [[{"tag": ...}, ...], ...]}}}},
  with tags "text", "a" (text, href) and "at" (user_id: an open_id).
- The answer is {"code", "msg", "data"}; only code 0 means sent (19021: the signature failed).
- 100 requests a minute and 5 a second per bot; a request body at most 20 KB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

from ecomflow.engine.config import ChannelConfig
from ecomflow.engine.events.channels.common import ChannelRefused, Outgoing, RateWindow, post_json

WINDOWS = (RateWindow(limit=100, span=timedelta(minutes=1)), RateWindow(limit=5, span=timedelta(seconds=1)))
MAX_BODY_BYTES = 20 * 1024
# Room for the timestamp and sign the body gets when it is sent.
_SIGNATURE_ROOM = 100


def sign(secret: str, timestamp: int) -> str:
    """Return the Base64 signature of a timestamp (seconds)."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def post_content(outgoing: Outgoing) -> list[list[dict[str, str]]]:
    """Return the post's paragraphs: headings, rows, links, then the mentions."""
    separator = "：" if outgoing.language == "zh" else ": "
    paragraphs: list[list[dict[str, str]]] = []
    for entry in outgoing.entries:
        if entry.heading:
            paragraphs.append([{"tag": "text", "text": entry.heading}])
        paragraphs += [[{"tag": "text", "text": f"{label}{separator}{value}"}] for label, value in entry.rows]
        if entry.link:
            paragraphs.append([{"tag": "a", "text": entry.link[0], "href": entry.link[1]}])
    if outgoing.footer:
        paragraphs.append([{"tag": "a", "text": outgoing.footer[0], "href": outgoing.footer[1]}])
    mentions = [{"tag": "at", "user_id": m.user_id, "user_name": m.name} for m in outgoing.mentions if m.user_id]
    if mentions:
        paragraphs.append(mentions)
    return paragraphs


def body(outgoing: Outgoing) -> dict[str, Any]:
    """Return the JSON body of a post message, unsigned."""
    locale = "zh_cn" if outgoing.language == "zh" else "en_us"
    return {
        "msg_type": "post",
        "content": {"post": {locale: {"title": outgoing.title, "content": post_content(outgoing)}}},
    }


def fits(outgoing: Outgoing) -> bool:
    """Tell whether the body stays within the documented 20 KB."""
    size = len(json.dumps(body(outgoing), ensure_ascii=False).encode())
    return size + _SIGNATURE_ROOM <= MAX_BODY_BYTES


def send(channel: ChannelConfig, outgoing: Outgoing, *, timeout: float) -> None:
    """Send the message; raise ChannelRefused unless Feishu answers code 0."""
    signed = body(outgoing)
    if channel.secret is not None:
        timestamp = int(time.time())
        signed = {"timestamp": str(timestamp), "sign": sign(channel.secret.get_secret_value(), timestamp), **signed}
    answer = post_json(channel.webhook.get_secret_value(), signed, timeout=timeout, name=channel.name)
    # The guide documents `code`; older bots have been seen answering {"StatusCode": 0} for success instead.
    code = answer.get("code", answer.get("StatusCode"))
    if code != 0:
        raise ChannelRefused(f"channel {channel.name!r} (feishu) answered code {code}: {str(answer.get('msg'))[:200]}")
