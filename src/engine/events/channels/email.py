"""Email over SMTP: STARTTLS always, then a login when the channel has a user; a text and an HTML part.

Recipients are the people the event names (by their email address) and the channel's own `to` list.
Files the message carries (the 日报表 workbook) go as attachments.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr

from ecomflow.engine.config import ChannelConfig
from ecomflow.engine.events.channels.common import ChannelRefused, Outgoing, RateWindow, plain_lines

logger = logging.getLogger("ecomflow.channels.email")
# SMTP servers set their own limits; none is known in advance.
WINDOWS: tuple[RateWindow, ...] = ()


def text_part(outgoing: Outgoing) -> str:
    """Return the text part."""
    return "\n".join([outgoing.title, "", *plain_lines(outgoing)]).rstrip() + "\n"


def html_part(outgoing: Outgoing) -> str:
    """Return the HTML part; every value is escaped."""
    parts = [f"<h3>{html.escape(outgoing.title)}</h3>"]
    for entry in outgoing.entries:
        if entry.heading:
            parts.append(f"<h4>{html.escape(entry.heading)}</h4>")
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in entry.rows
        )
        parts.append(f"<table>{rows}</table>")
        if entry.link:
            parts.append(f'<p><a href="{html.escape(entry.link[1])}">{html.escape(entry.link[0])}</a></p>')
    if outgoing.footer:
        parts.append(f'<p><a href="{html.escape(outgoing.footer[1])}">{html.escape(outgoing.footer[0])}</a></p>')
    return f"<!doctype html><html><body>{''.join(parts)}</body></html>"


def build_email(channel: ChannelConfig, outgoing: Outgoing) -> EmailMessage:
    """Return the email: subject, sender, recipients, a text and an HTML alternative."""
    message = EmailMessage()
    message["Subject"] = outgoing.title
    message["From"] = formataddr(("ecomflow", channel.sender))
    message["To"] = ", ".join(outgoing.recipients)
    message.set_content(text_part(outgoing))
    message.add_alternative(html_part(outgoing), subtype="html")
    for file in outgoing.attachments:
        maintype, subtype = file.content_type.split("/", 1)
        message.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.filename)
    return message


def fits(outgoing: Outgoing) -> bool:
    """Tell whether the message fits in one email: always."""
    return True


def send(channel: ChannelConfig, outgoing: Outgoing, *, timeout: float) -> None:
    """Send the email over STARTTLS; raise ChannelRefused if the server refuses it or cannot be reached."""
    if not outgoing.recipients:
        raise ChannelRefused(f"channel {channel.name!r} (email): the message names no recipient")
    context = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=timeout) as smtp:
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
            if channel.username:
                smtp.login(channel.username, channel.password.get_secret_value() if channel.password else "")
            refused = smtp.send_message(build_email(channel, outgoing))
    except smtplib.SMTPResponseException as exc:
        raise ChannelRefused(f"channel {channel.name!r} (email): {type(exc).__name__} {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        # The text of these may quote addresses; the type says enough to act on.
        raise ChannelRefused(f"channel {channel.name!r} (email): {type(exc).__name__}") from None
    if refused:
        # Retrying would send it again to those who took it: the refused ones are counted, never named.
        logger.warning("channel %r: %d of %d recipients refused", channel.name, len(refused), len(outgoing.recipients))
