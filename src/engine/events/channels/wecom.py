"""WeCom group robot (企业微信群机器人): markdown messages, or text ones when a mention needs a mobile number.

The rules, from WeCom's group robot documentation (developer.work.weixin.qq.com/document/path/91770):
- The webhook URL carries the robot's key (…/cgi-bin/webhook/send?key=KEY); requests are not signed.
- markdown: {"msgtype": "markdown", "markdown": {"content"}}, content UTF-8 at most 4096 bytes; it
  @-mentions with "<@userid>" and has no list of mobile numbers.
- text: {"msgtype": "text", "text": {"content", "mentioned_list", "mentioned_mobile_list"}}, content at most
  2048 bytes; `mentioned_mobile_list` exists on text messages only.
- The answer carries {"errcode", "errmsg"}; only errcode 0 means sent (93000: the key is not valid).
- Each robot sends at most 20 messages a minute.
So a message is markdown unless someone to mention has no WeCom userid but a mobile number: then it is a
text message, whose mentioned_mobile_list is the only documented way to reach them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ecomflow.engine.config import ChannelConfig
from ecomflow.engine.events.channels.common import (
    ChannelRefused,
    Outgoing,
    RateWindow,
    markdown_lines,
    plain_lines,
    post_json,
)

WINDOWS = (RateWindow(limit=20, span=timedelta(minutes=1)),)
MAX_MARKDOWN_BYTES = 4096
MAX_TEXT_BYTES = 2048


def needs_text(outgoing: Outgoing) -> bool:
    """Tell whether someone can only be mentioned by mobile number, which markdown cannot do."""
    return any(m.mobile and not m.user_id for m in outgoing.mentions)


def markdown_content(outgoing: Outgoing) -> str:
    """Return the markdown content, mentions as <@userid>."""
    lines = [f"### {outgoing.title}", "", *markdown_lines(outgoing, bullet="> ")]
    mentioned = " ".join(f"<@{m.user_id}>" for m in outgoing.mentions if m.user_id)
    if mentioned:
        lines.append(mentioned)
    return "\n".join(lines).rstrip() + "\n"


def text_content(outgoing: Outgoing) -> str:
    """Return the plain text content (its mentions travel in the lists beside it)."""
    return "\n".join([outgoing.title, "", *plain_lines(outgoing)]).rstrip() + "\n"


def body(outgoing: Outgoing) -> dict[str, Any]:
    """Return the JSON body: markdown, or text when a mention needs a mobile number."""
    if not needs_text(outgoing):
        return {"msgtype": "markdown", "markdown": {"content": markdown_content(outgoing)}}
    return {
        "msgtype": "text",
        "text": {
            "content": text_content(outgoing),
            "mentioned_list": [m.user_id for m in outgoing.mentions if m.user_id],
            "mentioned_mobile_list": [m.mobile for m in outgoing.mentions if m.mobile and not m.user_id],
        },
    }


def fits(outgoing: Outgoing) -> bool:
    """Tell whether the content is within the documented size of its message type."""
    if needs_text(outgoing):
        return len(text_content(outgoing).encode()) <= MAX_TEXT_BYTES
    return len(markdown_content(outgoing).encode()) <= MAX_MARKDOWN_BYTES


def send(channel: ChannelConfig, outgoing: Outgoing, *, timeout: float) -> None:
    """Send the message; raise ChannelRefused unless WeCom answers errcode 0."""
    answer = post_json(channel.webhook.get_secret_value(), body(outgoing), timeout=timeout, name=channel.name)
    if answer.get("errcode") != 0:
        errmsg = str(answer.get("errmsg"))[:200]
        raise ChannelRefused(f"channel {channel.name!r} (wecom) answered errcode {answer.get('errcode')}: {errmsg}")
