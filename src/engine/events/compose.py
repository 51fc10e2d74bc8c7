"""Compose queued channel messages into one Outgoing: a single notice, a burst's digest, or a role's morning digest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ecomflow.engine.events.channels.common import Entry, Mention, Outgoing
from ecomflow.engine.events.wording import (
    daily_digest_title,
    digest_title,
    headline,
    label,
    local_time,
    more_items,
    rate,
)

Fits = Callable[[Outgoing], bool]


def title_of(notice: dict[str, Any]) -> str:
    """Return the one-line title of a notice: what happened, to which process and step."""
    language, event = notice["language"], notice["event"]
    what = headline(event, language)
    if event == "report.daily":
        subject = notice["report"].get("report_date") or ""
    elif notice.get("step"):
        subject = f"{notice['process']} · {notice['step']}"
    else:
        subject = f"{notice.get('process', '')} {notice.get('business_key') or ''}".strip()
    return f"【{what}】{subject}" if language == "zh" else f"[{what}] {subject}"


def rows_of(notice: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return the label/value rows of a notice: only the facts its event names."""
    language = notice["language"]
    if notice["event"] == "report.daily":
        report = notice["report"]
        sales = ()
        if report.get("gmv") is not None:
            attainment = report.get("month_attainment")
            sales = (
                (label("gmv", language), str(report["gmv"])),
                (label("month_attainment", language), rate(None if attainment is None else float(attainment))),
                (label("refund_amount", language), str(report.get("refund_amount") or "0.00")),
                (label("signups", language), str(report.get("signups", 0))),
            )
        return (
            *sales,
            (label("done", language), str(report.get("done", 0))),
            (label("open", language), str(report.get("open", 0))),
            (label("overdue_count", language), str(report.get("overdue", 0))),
            (label("on_time_rate", language), rate(report.get("on_time_rate"))),
            (label("rework_rate", language), rate(report.get("rework_rate"))),
        )
    rows = []
    if notice.get("business_key"):
        rows.append((label("business_key", language), notice["business_key"]))
    if notice.get("step"):
        rows.append((label("role", language), notice["role"]))
        rows.append((label("assignee", language), notice.get("assignee") or label("unassigned", language)))
    if notice.get("due_at"):
        due = datetime.fromisoformat(notice["due_at"])
        rows.append((label("due_at", language), local_time(due, timezone=notice["timezone"], language=language)))
    if notice.get("state"):
        rows.append((label("state", language), label(notice["state"], language)))
    if notice.get("escalated_to"):
        rows.append((label("escalated_to", language), notice["escalated_to"]))
    return tuple(rows)


def link_of(notice: dict[str, Any]) -> tuple[str, str] | None:
    """Return the notice's link with its label."""
    if not notice.get("link"):
        return None
    return label(notice.get("link_label", "open_task"), notice["language"]), notice["link"]


def download_of(notice: dict[str, Any]) -> tuple[str, str] | None:
    """Return the link to the notice's file (the 日报表 XLSX) with its label, if it has one."""
    if not notice.get("download"):
        return None
    return label("download_xlsx", notice["language"]), notice["download"]


def mentions_of(payloads: Sequence[dict[str, Any]]) -> tuple[Mention, ...]:
    """Return everyone the payloads mention, each once."""
    found: dict[str, Mention] = {}
    for payload in payloads:
        for person in payload.get("mentions", []):
            found.setdefault(person["name"], Mention(person["name"], person.get("mobile"), person.get("user_id")))
    return tuple(found.values())


def recipients_of(payloads: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Return every email recipient of the payloads, each once."""
    return tuple(dict.fromkeys(address for payload in payloads for address in payload.get("recipients", [])))


def compose(payloads: Sequence[dict[str, Any]], *, fits: Fits) -> Outgoing:
    """Return the message that carries the payloads: one notice as itself, several as a digest."""
    if len(payloads) == 1 and payloads[0]["notice"]["event"] == "daily_digest":
        return compose_daily_digest(payloads[0], fits=fits)
    notices = [payload["notice"] for payload in payloads]
    language = notices[0]["language"]
    common = {"language": language, "mentions": mentions_of(payloads), "recipients": recipients_of(payloads)}
    if len(notices) == 1:
        return Outgoing(
            title=title_of(notices[0]),
            entries=(Entry(None, rows_of(notices[0]), link_of(notices[0])),),
            footer=download_of(notices[0]),
            **common,
        )
    entries = tuple(Entry(title_of(n), rows_of(n), link_of(n)) for n in notices)
    return Outgoing(title=digest_title(count=len(notices), language=language), entries=entries, **common)


def compose_daily_digest(payload: dict[str, Any], *, fits: Fits) -> Outgoing:
    """Return a role's morning digest with as many of its tasks as the channel takes; a footer counts the rest."""
    notice = payload["notice"]
    language, items = notice["language"], notice["items"]
    title = daily_digest_title(
        role=notice["role"], overdue=notice["overdue"], at_risk=notice["at_risk"], language=language
    )
    left_out = notice.get("more", 0)
    for shown in range(len(items), -1, -1):
        more = left_out + len(items) - shown
        footer = (more_items(count=more, language=language) if more else label("open_inbox", language), notice["link"])
        outgoing = Outgoing(
            title=title,
            entries=tuple(Entry(_item_heading(item), rows_of(item), link_of(item)) for item in items[:shown]),
            language=language,
            footer=footer,
            mentions=mentions_of([payload]),
            recipients=recipients_of([payload]),
        )
        if fits(outgoing):
            return outgoing
    return outgoing


def _item_heading(item: dict[str, Any]) -> str:
    key = f"（{item['business_key']}）" if item["language"] == "zh" else f" ({item['business_key']})"
    return f"{item['process']} · {item['step']}" + (key if item.get("business_key") else "")
