"""The notification worker's loop: recover, claim due groups, decide, compose, send, record.

Per group (one recipient, one ticket): the preference and the read marker decide what goes
(decisions.select_items); a mail is composed (mail.compose); the transport runs MAIL/RCPT/DATA and the
body; the rows are marked `delivering` in one committed statement; only then the final "." is sent.
The server's reply marks them `sent` (2xx), back to the queue with backoff (4xx, or a connection that
failed before the "."), or `failed` (5xx, or too many attempts). A worker killed at any point either
had not sent the "." (its rows are `claimed`: recovery queues them again, the server discarded the
half mail) or had (its rows are `delivering`: recovery counts them as sent). Nothing is sent twice;
what can be lost is a mail whose "." was refused with a 4xx in the instant the worker died.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import uuid
from dataclasses import dataclass, field

from notify.decisions import Outcome, backoff_seconds, classify_reply, select_items
from notify.mail import Envelope, compose
from notify.queue import Group, Queue
from notify.smtp import SmtpRefused, SmtpTarget, Transport, wire_body

log = logging.getLogger("notify")


@dataclass(frozen=True)
class Settings:
    db_url: str
    smtp_url: str
    from_address: str = "support@localhost"
    app_url: str = "http://127.0.0.1:8080"
    delay: float = 300.0  # seconds a message must stay unread before it is mailed (a preference may override)
    poll: float = 5.0  # seconds between looks at the queue when nothing was due
    batch: int = 100  # groups claimed at once
    lease: float = 600.0  # seconds a claim holds before another worker may take it over
    retry_base: float = 30.0  # first retry after ~this many seconds, doubling, capped at an hour
    max_attempts: int = 8


@dataclass
class Stats:
    mails: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)


class Worker:
    """One worker process's loop; run several against one database (each claims its own groups)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target = SmtpTarget.parse(settings.smtp_url)
        self.queue = Queue(settings.db_url)
        self.transport = Transport(self.target)
        self.stats = Stats()

    def close(self) -> None:
        self.transport.close()
        self.queue.close()

    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> Stats:
        """Work until `stop` is set (or, with `once`, until nothing is due)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if not self.step() and (once or stop.wait(self.settings.poll)):
                break
        return self.stats

    def step(self) -> bool:
        """One round: recover, claim a batch and send it. False when nothing was due."""
        s = self.settings
        self.stats.recovered += self.queue.recover()
        groups = self.queue.claim(delay=s.delay, groups=s.batch, lease=s.lease)
        if not groups:
            self.transport.close()  # no idle connection held open between rounds
            return False
        delivered: list[int] = []
        try:
            for group in groups:
                delivered += self._deliver(group)
        finally:
            self.queue.sent(delivered)
        return True

    def _deliver(self, group: Group) -> list[int]:
        """Handle one group; returns the ids now waiting for their `sent` mark."""
        s = self.settings
        items, skip = select_items(group.preference, group.last_read_at, group.items)
        if skip is not None or not group.email:
            self.queue.finish(group.ids, "skipped", skip or "recipient has no email address")
            self.stats.skipped += 1
            return []
        ids = [i.notification_id for i in items]
        left_out = [i for i in group.ids if i not in ids]
        if left_out:
            self.queue.finish(left_out, "skipped", "read or deleted before the mail went out")
        mail_id = str(uuid.uuid4())
        envelope = Envelope(mail_id, group.email, group.recipient_name, group.ticket_id, group.subject,
                            f"{s.app_url.rstrip('/')}/?t={group.ticket_id}")
        body = wire_body(compose(envelope, items, group.context, s.from_address))
        try:
            self.transport.begin(s.from_address, group.email, body)
        except SmtpRefused as exc:
            self._not_sent(ids, group.attempts, exc.outcome, str(exc))
            return []
        except (OSError, smtplib.SMTPException) as exc:
            self.transport.abort()
            self._not_sent(ids, group.attempts, Outcome.RETRY, f"SMTP connection: {exc}")
            return []
        if not self.queue.delivering(ids, mail_id):
            self.transport.abort()  # another worker took these over (our lease ran out): send nothing
            return []
        # from here on the mail may be delivered: these rows never go back to the queue unless the
        # server says it refused the mail
        try:
            code, message = self.transport.finish()
        except (OSError, smtplib.SMTPException) as exc:
            self.transport.abort()
            log.warning("no reply after handing over mail %s (%s); counted as sent", mail_id, exc)
            self.stats.mails += 1
            return ids
        outcome = classify_reply(code)
        if outcome is Outcome.SENT:
            self.stats.mails += 1
            self.stats.sent += len(ids)
            return ids
        self._not_sent(ids, group.attempts + 1, outcome, f"SMTP {code} {message}", counted=True)
        return []

    def _not_sent(self, ids: list[int], attempts: int, outcome: Outcome, note: str, *, counted: bool = False
                  ) -> None:
        s = self.settings
        self.stats.errors.append(note)
        tries = attempts if counted else attempts + 1
        if outcome is Outcome.FAILED or tries >= s.max_attempts:
            log.error("giving up on notifications %s: %s", ids, note)
            self.queue.finish(ids, "failed", note)
            self.stats.failed += len(ids)
            return
        after = backoff_seconds(tries, s.retry_base)
        log.warning("retrying notifications %s in %.1fs: %s", ids, after, note)
        self.queue.retry(ids, after, note, counted=counted)
        self.stats.retried += len(ids)
