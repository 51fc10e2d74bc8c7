"""DingTalk custom robot (自定义机器人): signed markdown messages that @-mention by mobile number or userid.

The rules, from DingTalk's custom robot documentation (open.dingtalk.com/document/robots/custom-robot-access,
/robots/customize-robot-security-settings and /development/robot-message-type):
- 加签: string_to_sign = timestamp + "\\n" + secret, HMAC-SHA256 keyed by the secret, Base64, then URL-encoded;
  sent as the query parameters `timestamp` (milliseconds, within an hour of DingTalk's clock) and `sign`.
- markdown: {"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "atUserIds", "isAtAll"}};
  a mentioned person's "@<mobile>" (or "@<userid>") must also be in the text.
- The answer is HTTP 200 with {"errcode", "errmsg"}; only errcode 0 means sent (310000: the signature or a
  keyword did not match; 410100: sending too fast).
- Each robot sends at most 20 messages a minute, else it is throttled for 10 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from ecomflow.engine.config import ChannelConfig
from ecomflow.engine.events.channels.common import ChannelRefused, Outgoing, RateWindow, markdown_lines, post_json

WINDOWS = (RateWindow(limit=20, span=timedelta(minutes=1)),)
# The documentation names no size limit for markdown; ours keeps a digest to a screen or two.
MAX_TEXT_BYTES = 4000


def sign(secret: str, timestamp_ms: int) -> str:
    """Return the Base64 signature of a timestamp (before URL-encoding)."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    """Return the webhook URL with `timestamp` and the URL-encoded `sign` appended."""
    separator = "&" if "?" in webhook else "?"
    return webhook + separator + urlencode({"timestamp": timestamp_ms, "sign": sign(secret, timestamp_ms)})


def mention_text(outgoing: Outgoing) -> str:
    """Return the "@<mobile>" / "@<userid>" line the text must hold for each mention to show."""
    return " ".join(f"@{m.mobile or m.user_id}" for m in outgoing.mentions if m.mobile or m.user_id)


def markdown_text(outgoing: Outgoing) -> str:
    """Return the markdown text of the message."""
    lines = [f"#### {outgoing.title}", "", *markdown_lines(outgoing)]
    mentioned = mention_text(outgoing)
    if mentioned:
        lines.append(mentioned)
    return "\n".join(lines).rstrip() + "\n"


def body(outgoing: Outgoing) -> dict[str, Any]:
    """Return the JSON body of a markdown message."""
    return {
        "msgtype": "markdown",
        "markdown": {"title": outgoing.title, "text": markdown_text(outgoing)},
        "at": {
            "atMobiles": [m.mobile for m in outgoing.mentions if m.mobile],
            "atUserIds": [m.user_id for m in outgoing.mentions if m.user_id and not m.mobile],
            "isAtAll": False,
        },
    }


def fits(outgoing: Outgoing) -> bool:
    """Tell whether the message is small enough to send as one."""
    return len(markdown_text(outgoing).encode()) <= MAX_TEXT_BYTES


def send(channel: ChannelConfig, outgoing: Outgoing, *, timeout: float) -> None:
    """Send the message; raise ChannelRefused unless DingTalk answers errcode 0."""
    url = channel.webhook.get_secret_value()
    if channel.secret is not None:
        url = signed_url(url, channel.secret.get_secret_value(), int(time.time() * 1000))
    answer = post_json(url, body(outgoing), timeout=timeout, name=channel.name)
    if answer.get("errcode") != 0:
        errmsg = str(answer.get("errmsg"))[:200]
        raise ChannelRefused(f"channel {channel.name!r} (dingtalk) answered errcode {answer.get('errcode')}: {errmsg}")
