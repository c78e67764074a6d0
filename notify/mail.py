"""Compose one notification mail: plain text and HTML alternatives, the sender's display name, a link.

Built with the standard library's `email` package (EmailMessage, SMTP policy: CRLF lines, RFC 2047 headers),
so encoding and MIME structure are the library's, not ours.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from notify.decisions import Item

EXCERPT_CHARS = 1500  # per message; the app has the rest
MAX_ITEMS = 10  # newest messages in one mail; the mail says how many more are waiting


@dataclass(frozen=True)
class Context:
    """An earlier message shown above the new ones, for the thread's sake."""

    sender_name: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class Envelope:
    """Who the mail goes to and what it is about."""

    mail_id: str
    recipient_email: str
    recipient_name: str
    ticket_id: str
    subject: str
    link: str


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + " …"


def _when(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts.utcoffset() is not None else ts.isoformat()


def compose(env: Envelope, items: Sequence[Item], context: Sequence[Context], from_address: str) -> EmailMessage:
    """The mail for `items` (oldest first), with up to two earlier messages as context."""
    shown = list(items)[-MAX_ITEMS:]
    hidden = len(items) - len(shown)
    senders = list(dict.fromkeys(i.sender_name for i in shown))
    mention = all(i.reason == "mention" for i in shown)
    what = "mentioned you" if mention else ("replied" if len(shown) == 1 else f"sent {len(items)} messages")
    headline = f"{', '.join(senders)} {what} in “{env.subject}”"

    msg = EmailMessage(policy=SMTP)
    sender_addr = Address(addr_spec=from_address)
    msg["From"] = Address(display_name=f"{shown[-1].sender_name} via SupportChat", addr_spec=sender_addr.addr_spec)
    msg["To"] = Address(display_name=env.recipient_name, addr_spec=env.recipient_email)
    msg["Subject"] = f"{'Mention' if mention else 'Re'}: {env.subject}"
    msg["Date"] = format_datetime(shown[-1].created_at)
    msg["Message-ID"] = f"<{env.mail_id}@supportchat>"
    thread = f"<ticket-{env.ticket_id}@supportchat>"
    msg["In-Reply-To"] = thread
    msg["References"] = thread
    msg["X-SupportChat-Ticket"] = env.ticket_id
    msg["Auto-Submitted"] = "auto-generated"

    lines = [headline, ""]
    for c in context:
        quoted = (f"  > {ln}" for ln in _excerpt(c.content).splitlines())
        lines += [f"  {c.sender_name}, {_when(c.created_at)}:", *quoted, ""]
    for i in shown:
        lines += [f"{i.sender_name}, {_when(i.created_at)}:", _excerpt(i.content), ""]
    if hidden:
        lines += [f"… and {hidden} earlier message(s) in the app.", ""]
    lines += [f"Open the ticket: {env.link}", "",
              "You get this mail because these messages were still unread. Choose when SupportChat mails you "
              "in the app's settings."]
    msg.set_content("\n".join(lines))

    esc = html.escape
    parts = [f"<p style=\"font:15px sans-serif\"><b>{esc(headline)}</b></p>"]
    for c in context:
        parts.append(f"<blockquote style=\"color:#666;font:13px sans-serif;border-left:3px solid #ddd;margin:0 0 8px;"
                     f"padding-left:8px\"><b>{esc(c.sender_name)}</b>, {esc(_when(c.created_at))}<br>"
                     f"{esc(_excerpt(c.content)).replace(chr(10), '<br>')}</blockquote>")
    for i in shown:
        parts.append(f"<p style=\"font:14px sans-serif\"><b>{esc(i.sender_name)}</b> "
                     f"<span style=\"color:#888\">{esc(_when(i.created_at))}</span><br>"
                     f"{esc(_excerpt(i.content)).replace(chr(10), '<br>')}</p>")
    if hidden:
        parts.append(f"<p style=\"color:#888;font:13px sans-serif\">… and {hidden} earlier message(s) in the app.</p>")
    parts.append(f"<p><a href=\"{esc(env.link, quote=True)}\" style=\"font:15px sans-serif\">Open the ticket</a></p>")
    parts.append("<p style=\"color:#888;font:12px sans-serif\">You get this mail because these messages were still "
                 "unread. Choose when SupportChat mails you in the app's settings.</p>")
    msg.add_alternative("<!doctype html><html><body>" + "".join(parts) + "</body></html>", subtype="html")
    return msg
