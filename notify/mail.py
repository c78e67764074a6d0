"""Compose one notification mail: plain text and HTML alternatives, the sender's display name, a link.

The mail is a multipart/alternative of two base64 UTF-8 parts, written out here (`_mime`) rather than built
with the `email` package: that package's objects cost 3-28 ms a mail on a loaded 2-core machine (the modern
policies re-parse every header; the classic API is ~10x cheaper and still several times the whole SMTP
exchange), which made composing the worker's largest cost. The parts that are easy to get wrong stay the
library's: `email.utils.formataddr` quotes display names and `email.header.Header` RFC 2047-encodes
non-ASCII ones and subjects, and any with a ``=?`` a reader would decode as an encoded word; the tests read
every mail back with the library's parser. Header values are stripped of CR/LF and every other control character
first, so a ticket subject or a display name cannot inject headers or put in one what a header may not hold.
"""

from __future__ import annotations

import base64
import functools
import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from notify.decisions import Item
from sync.models import mentions_shown

_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
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
    """A message's text as people read it (mentions as ``@Name``), cut to EXCERPT_CHARS."""
    text = mentions_shown(text)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + " …"


def _when(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts.utcoffset() is not None else ts.isoformat()


def compose(env: Envelope, items: Sequence[Item], context: Sequence[Context], from_address: str) -> bytes:
    """The mail for `items` (oldest first), with up to two earlier messages as context, as CRLF bytes."""
    shown = list(items)[-MAX_ITEMS:]
    hidden = len(items) - len(shown)
    senders = list(dict.fromkeys(i.sender_name for i in shown))
    mention = all(i.reason == "mention" for i in shown)
    what = "mentioned you" if mention else ("replied" if len(shown) == 1 else f"sent {len(items)} messages")
    headline = f"{', '.join(senders)} {what} in “{env.subject}”"

    thread = f"<ticket-{env.ticket_id}@supportchat>"
    headers = [
        ("From", _address(f"{shown[-1].sender_name} via SupportChat", _addr_spec(from_address))),
        ("To", _address(env.recipient_name, env.recipient_email)),
        ("Subject", _text(f"{'Mention' if mention else 'Re'}: {env.subject}")),
        ("Date", format_datetime(shown[-1].created_at)),
        ("Message-ID", f"<{env.mail_id}@supportchat>"),
        ("In-Reply-To", thread),
        ("References", thread),
        ("X-SupportChat-Ticket", _text(env.ticket_id)),
        ("Auto-Submitted", "auto-generated"),
    ]

    lines = [headline, ""]
    for c in context:
        quoted = (f"  > {ln}" for ln in _excerpt(c.content).splitlines())
        lines += [f"  {c.sender_name}, {_when(c.created_at)}:", *quoted, ""]
    for i in shown:
        lines += [f"{i.sender_name}, {_when(i.created_at)}:", _excerpt(i.content), ""]
    if hidden:
        lines += [f"… and {hidden} earlier message(s) in the app.", ""]
    lines += [
        f"Open the ticket: {env.link}",
        "",
        "You get this mail because these messages were still unread. Choose when SupportChat mails you "
        "in the app's settings.",
    ]
    plain = "\n".join(lines)

    esc = html.escape
    parts = [f'<p style="font:15px sans-serif"><b>{esc(headline)}</b></p>']
    for c in context:
        parts.append(
            f'<blockquote style="color:#666;font:13px sans-serif;border-left:3px solid #ddd;margin:0 0 8px;'
            f'padding-left:8px"><b>{esc(c.sender_name)}</b>, {esc(_when(c.created_at))}<br>'
            f"{esc(_excerpt(c.content)).replace(chr(10), '<br>')}</blockquote>"
        )
    for i in shown:
        parts.append(
            f'<p style="font:14px sans-serif"><b>{esc(i.sender_name)}</b> '
            f'<span style="color:#888">{esc(_when(i.created_at))}</span><br>'
            f"{esc(_excerpt(i.content)).replace(chr(10), '<br>')}</p>"
        )
    if hidden:
        parts.append(f'<p style="color:#888;font:13px sans-serif">… and {hidden} earlier message(s) in the app.</p>')
    parts.append(f'<p><a href="{esc(env.link, quote=True)}" style="font:15px sans-serif">Open the ticket</a></p>')
    parts.append(
        '<p style="color:#888;font:12px sans-serif">You get this mail because these messages were still '
        "unread. Choose when SupportChat mails you in the app's settings.</p>"
    )
    return _mime(headers, plain, "<!doctype html><html><body>" + "".join(parts) + "</body></html>")


@functools.lru_cache(maxsize=8)
def _addr_spec(address: str) -> str:
    return parseaddr(address)[1]


def _one_line(value: str) -> str:
    """A header value's text: line breaks and tabs as spaces, no other control character (RFC 5322 allows none)."""
    return _CONTROLS.sub("", " ".join(value.splitlines()).replace("\r", " ").replace("\t", " "))


def _plain(value: str) -> bool:
    """Whether a header's text may go as it is: ASCII, and no ``=?`` that a reader would decode as an RFC 2047
    encoded word (a display name "=?utf-8?b?…?=" showed as "Bank Security <security@bank.example>")."""
    return value.isascii() and "=?" not in value


def _text(value: str) -> str:
    value = _one_line(value)
    # one encoded word per header where it fits a line (998): Python's reader puts a space where a fold split one
    return value if _plain(value) else Header(value, "utf-8", maxlinelen=998).encode(linesep="\r\n")


def _address(name: str, address: str) -> str:
    name, address = _one_line(name), _one_line(address)
    if _plain(name):
        return formataddr((name, address), "utf-8")
    return f"{_text(name)} <{address}>"  # encoded as formataddr encodes a non-ASCII name


def _part(boundary: str, subtype: str, text: str) -> bytes:
    head = f"--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return head.encode("ascii") + base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")


def _mime(headers: list[tuple[str, str]], plain: str, html_text: str) -> bytes:
    """The whole mail as CRLF bytes: headers, then the two alternatives (plain first: the least preferred)."""
    boundary = f"=_supportchat_{uuid.uuid4().hex}"
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    return (
        head.encode("ascii")
        + _part(boundary, "plain", plain)
        + _part(boundary, "html", html_text)
        + f"--{boundary}--\r\n".encode("ascii")
    )
