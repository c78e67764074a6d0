"""A real SMTP server in the test process (aiosmtpd on a thread) that keeps every mail it accepted.

A mail counts as received when its final "." arrived, before the reply is sent, as with any MTA that
queued it. `refuse[address] = n` answers the next n mails to that address with a 451 (a temporary
failure); `slow` delays every reply (the mail is already kept), to widen the window a kill lands in.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast

from aiosmtpd.controller import Controller

from localbase.postgres import free_port


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.raw, policy=default))

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return "" if part is None else cast(EmailMessage, part).get_content()

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return "" if part is None else cast(EmailMessage, part).get_content()


@dataclass
class Sink:
    """The handler: aiosmtpd calls handle_DATA once per mail, after the final "."."""

    mails: list[Mail] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    refuse: dict[str, int] = field(default_factory=dict)
    slow: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpts = [str(r) for r in envelope.rcpt_tos]
        with self.lock:
            for r in rcpts:
                self.attempts[r] = self.attempts.get(r, 0) + 1
            if any(self.refuse.get(r, 0) > 0 for r in rcpts):
                for r in rcpts:
                    self.refuse[r] = max(self.refuse.get(r, 0) - 1, 0)
                return "451 4.3.0 try again later"
            self.mails.append(Mail(str(envelope.mail_from), rcpts, bytes(envelope.original_content)))
        if self.slow:
            await asyncio.sleep(self.slow)
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.recipients]


@contextmanager
def running_sink() -> Iterator[tuple[Sink, str]]:
    """A started SMTP server and its smtp:// URL; stopped on exit."""
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
