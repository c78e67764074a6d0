"""Auth emails: SMTP when configured, otherwise a local inbox served over HTTP (like the Supabase
CLI's Inbucket/Mailpit), so magic links, OTPs, recovery and invitations work end to end locally.

`Mailer.send()` renders nothing itself (the auth service writes subject and body); it delivers:
- with `LOCALBASE_SMTP_URL` (`supportchat stack --smtp-url smtp://user:pass@host:port`, or
  `smtps://` for implicit TLS; `?starttls=1` upgrades a plain connection), through the standard
  library's `smtplib` in a worker thread, so the event loop never waits on a mail server;
- always into the local inbox too (the last `INBOX_SIZE` messages, in memory), which the stack
  serves at `GET /inbox/api/v1/messages` and `GET /inbox/api/v1/message/{id}` (Mailpit's paths and
  field names). Only the service_role key may read it: the messages carry sign-in links.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import os
import smtplib
import ssl
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

INBOX_SIZE = 500
DEFAULT_SENDER = "Supabase Auth <noreply@localbase.local>"


class MailError(Exception):
    """The mail server refused or could not be reached."""


@dataclass(frozen=True)
class Message:
    id: str
    sender: str
    to: str
    subject: str
    text: str
    html: str
    created: datetime

    def summary(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "From": {"Address": self.sender},
            "To": [{"Address": self.to}],
            "Subject": self.subject,
            "Created": self.created.isoformat(),
            "Snippet": self.text[:200],
        }

    def detail(self) -> dict[str, Any]:
        return {**self.summary(), "Text": self.text, "HTML": self.html}


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP URL must look like smtp://[user:pass@]host[:port], got {url!r}")
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=parts.scheme == "smtps",
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
        )

    def deliver(self, message: EmailMessage) -> None:
        """Blocking send (run it in a thread)."""
        try:
            if self.implicit_tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=30, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=30)
            with client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP delivery to {self.host}:{self.port} failed: {exc}") from exc


@dataclass
class Mailer:
    smtp: SmtpTarget | None = None
    sender: str = DEFAULT_SENDER
    inbox: deque[Message] = field(default_factory=lambda: deque(maxlen=INBOX_SIZE))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def from_env(cls) -> Mailer:
        url = os.environ.get("LOCALBASE_SMTP_URL", "")
        sender = os.environ.get("LOCALBASE_SMTP_SENDER", "") or DEFAULT_SENDER
        return cls(SmtpTarget.parse(url) if url else None, sender)

    async def send(self, to: str, subject: str, text: str, html: str) -> Message:
        message = Message(str(next(self._ids)), self.sender, to, subject, text, html, datetime.now(UTC))
        if self.smtp is not None:
            mime = EmailMessage()
            mime["From"], mime["To"], mime["Subject"] = self.sender, to, subject
            mime.set_content(text)
            mime.add_alternative(html, subtype="html")
            await asyncio.to_thread(self.smtp.deliver, mime)
        self.inbox.append(message)
        return message

    def routes(self, service_role_key: Any) -> Mount:
        """The inbox API; `service_role_key` is called per request (the key is known only at startup)."""

        def allowed(request: Request) -> bool:
            key = request.headers.get("apikey") or ""
            return bool(key) and hmac.compare_digest(key.encode(), str(service_role_key(request)).encode())

        async def list_messages(request: Request) -> Response:
            if not allowed(request):
                return JSONResponse({"message": "Invalid API key"}, status_code=401)
            newest_first = [m.summary() for m in reversed(self.inbox)]
            return JSONResponse({"total": len(newest_first), "messages": newest_first})

        async def one_message(request: Request) -> Response:
            if not allowed(request):
                return JSONResponse({"message": "Invalid API key"}, status_code=401)
            wanted = request.path_params["message_id"]
            for message in self.inbox:
                if message.id == wanted:
                    return JSONResponse(message.detail())
            return JSONResponse({"message": "message not found"}, status_code=404)

        async def clear(request: Request) -> Response:
            if not allowed(request):
                return JSONResponse({"message": "Invalid API key"}, status_code=401)
            self.inbox.clear()
            return Response(status_code=204)

        return Mount(
            "/inbox/api/v1",
            routes=[
                Route("/messages", list_messages, methods=["GET"]),
                Route("/messages", clear, methods=["DELETE"]),
                Route("/message/{message_id}", one_message, methods=["GET"]),
            ],
        )
