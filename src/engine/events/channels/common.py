"""What every channel shares: the message as composed, rate windows, the refusal signal, a secret-free POST.

ChannelRefused            the vendor did not take the message (transport error, non-2xx, or HTTP 200 with
                          an error code): the dispatcher retries it with backoff, then marks it failed
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx


class ChannelRefused(Exception):
    """The channel did not accept the message; it is retried after a backoff. The text never holds a secret."""


@dataclass(frozen=True)
class RateWindow:
    """At most `limit` messages within `span`, as the vendor documents for one robot."""

    limit: int
    span: timedelta


@dataclass(frozen=True)
class Entry:
    """One item of a message: a heading (in digests), label/value rows and a link."""

    heading: str | None
    rows: tuple[tuple[str, str], ...]
    link: tuple[str, str] | None = None


@dataclass(frozen=True)
class Mention:
    """A person to @-mention: their name, and the mobile number and the channel's user id we know of them."""

    name: str
    mobile: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class FileAttachment:
    """A file a message carries (email only): its name, its media type and its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """A message as composed, before a channel gives it its vendor's shape."""

    title: str
    entries: tuple[Entry, ...]
    language: str = "zh"
    footer: tuple[str, str] | None = None
    mentions: tuple[Mention, ...] = ()
    recipients: tuple[str, ...] = ()
    attachments: tuple[FileAttachment, ...] = ()


def redacted_target(url: str) -> str:
    """Return a robot URL without its credential (query string, and the last path segment for Feishu's hook)."""
    parts = urlsplit(url)
    path = parts.path
    if "/hook/" in path:
        path = path.rsplit("/", 1)[0] + "/…"
    return f"{parts.scheme}://{parts.netloc}{path}"


class _WithoutCredentials(logging.Filter):
    """Keep robot credentials (a query's token or key, a Feishu hook id) out of httpx's request log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted_target(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


# httpx logs every request's full URL at INFO; for a robot that URL is its password.
logging.getLogger("httpx").addFilter(_WithoutCredentials())


def post_json(url: str, body: dict[str, Any], *, timeout: float, name: str) -> dict[str, Any]:
    """POST a JSON body and return the JSON answer; raise ChannelRefused, naming the channel, never its URL."""
    content = json.dumps(body, ensure_ascii=False).encode()
    try:
        response = httpx.post(
            url, content=content, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        # The exception's own text may quote the URL, which holds the robot's credential: only its type is kept.
        raise ChannelRefused(f"{type(exc).__name__} reaching channel {name!r}") from None
    if not response.is_success:
        raise ChannelRefused(f"channel {name!r} answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise ChannelRefused(f"channel {name!r} answered HTTP {response.status_code} without JSON") from None
    if not isinstance(answer, dict):
        raise ChannelRefused(f"channel {name!r} answered JSON that is not an object")
    return answer


def markdown_lines(outgoing: Outgoing, *, bullet: str = "- ") -> list[str]:
    """Return the entries and footer as markdown lines (DingTalk's and WeCom's markdown share this much)."""
    lines: list[str] = []
    for entry in outgoing.entries:
        if entry.heading:
            lines.append(f"**{entry.heading}**")
        separator = "：" if outgoing.language == "zh" else ": "
        lines += [f"{bullet}{label}{separator}{value}" for label, value in entry.rows]
        if entry.link:
            # A blank line first: else markdown reads the link as part of the last list item.
            lines += ["", f"[{entry.link[0]}]({entry.link[1]})"]
        lines.append("")
    if outgoing.footer:
        lines.append(f"[{outgoing.footer[0]}]({outgoing.footer[1]})")
    return lines


def plain_lines(outgoing: Outgoing) -> list[str]:
    """Return the entries and footer as plain text lines (email's text part, WeCom's text message)."""
    separator = "：" if outgoing.language == "zh" else ": "
    lines: list[str] = []
    for entry in outgoing.entries:
        if entry.heading:
            lines.append(entry.heading)
        lines += [f"{label}{separator}{value}" for label, value in entry.rows]
        if entry.link:
            lines.append(f"{entry.link[0]}{separator}{entry.link[1]}")
        lines.append("")
    if outgoing.footer:
        lines.append(f"{outgoing.footer[0]}{separator}{outgoing.footer[1]}")
    return lines
