"""The notification worker's loop: recover, claim due groups, decide, compose, send, record.

Per group (one recipient, one ticket): the preference and the read marker decide what goes
(decisions.select_items); a mail is composed (mail.compose); the transport runs MAIL/RCPT/DATA and the
body; the rows are marked `delivering` in one committed statement; only then the final "." is sent.
The server's reply marks them `sent` (2xx), back to the queue with backoff (4xx, or a connection that
failed before the "."), or `failed` (5xx, or too many attempts). A worker killed at any point either
had not sent the "." (its rows are `claimed`: recovery queues them again, the server discarded the
half mail) or had (its rows are `delivering`: recovery counts them as sent). Nothing is sent twice;
what can be lost is a mail whose "." was refused with a 4xx in the instant the worker died.

The groups of a batch go out over `connections` SMTP connections at once, one thread each (the threads
mostly wait on sockets, which releases the GIL); every mail still takes the steps above on its own.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from notify.decisions import Outcome, backoff_seconds, classify_reply, select_items
from notify.mail import Envelope, compose
from notify.queue import Group, Queue
from notify.smtp import SmtpRefused, SmtpTarget, Transport, wire_body

log = logging.getLogger("notify")

WAKE_EVERY = 10.0  # seconds between wake-ups of snoozed tickets


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
    connections: int = 4  # SMTP connections used at once (one thread each); each mail still goes out alone


@dataclass
class Stats:
    mails: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    woken: int = 0
    errors: list[str] = field(default_factory=list)


class Worker:
    """One worker process's loop; run several against one database (each claims its own groups)."""

    def __init__(self, settings: Settings) -> None:
        if settings.connections < 1:
            raise ValueError("--connections must be at least 1")
        self.settings = settings
        self.target = SmtpTarget.parse(settings.smtp_url)
        self.queue = Queue(settings.db_url)  # psycopg serializes the threads' statements on it
        self.stats = Stats()
        self._next_wake = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._transports: list[Transport] = []
        self._siblings: list[Queue] = []
        self._pool = ThreadPoolExecutor(settings.connections, thread_name_prefix="notify-smtp")

    def _transport(self) -> Transport:
        """This thread's SMTP connection."""
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is None:
            transport = self._local.transport = Transport(self.target)
            with self._lock:
                self._transports.append(transport)
        return transport

    def _rows(self) -> Queue:
        """This thread's database connection (same worker token): the threads' marks run side by side."""
        queue: Queue | None = getattr(self._local, "queue", None)
        if queue is None:
            queue = self._local.queue = self.queue.sibling()
            with self._lock:
                self._siblings.append(queue)
        return queue

    def _close_transports(self) -> None:
        with self._lock:
            for t in self._transports:
                t.close()

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._close_transports()
        for sibling in self._siblings:
            sibling.close()
        self.queue.close()

    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> Stats:
        """Work until `stop` is set (or, with `once`, until nothing is due).

        The next batch is claimed while the previous one is still going out, so the database round trips
        of a claim overlap the SMTP work instead of stalling it."""
        stop = stop or threading.Event()
        inflight: list[Future[list[int]]] = []
        try:
            while not stop.is_set():
                groups = self._claim()
                self._settle(inflight)
                inflight = [self._pool.submit(self._deliver, group) for group in groups]
                if not groups:
                    self._close_transports()  # no idle connection held open between rounds
                    if once or stop.wait(self.settings.poll):
                        break
        finally:
            self._settle(inflight)
        return self.stats

    def _claim(self) -> list[Group]:
        """Wake snoozed tickets now and then, give back dead workers' rows, claim a batch."""
        s = self.settings
        if time.monotonic() >= self._next_wake:
            # the worker is the server-side process a deployment already runs: it also wakes snoozed tickets
            self._count(woken=self.queue.wake_snoozed())
            self._next_wake = time.monotonic() + WAKE_EVERY
        self._count(recovered=self.queue.recover())
        return self.queue.claim(delay=s.delay, groups=s.batch, lease=s.lease)

    def _settle(self, inflight: list[Future[list[int]]]) -> None:
        """Wait for a batch's mails and mark the delivered ones sent (one statement)."""
        delivered: list[int] = []
        failure: BaseException | None = None
        for future in inflight:
            try:
                delivered += future.result()
            except Exception as exc:  # a database error: the rows stay claimed and are recovered later
                failure = failure or exc
        inflight.clear()
        self.queue.sent(delivered)
        if failure is not None:
            raise failure

    def _deliver(self, group: Group) -> list[int]:
        """Handle one group; returns the ids now waiting for their `sent` mark."""
        s = self.settings
        items, skip = select_items(group.preference, group.last_read_at, group.items)
        if skip is not None or not group.email:
            self._rows().finish(group.ids, "skipped", skip or "recipient has no email address")
            self._count(skipped=1)
            return []
        ids = [i.notification_id for i in items]
        left_out = [i for i in group.ids if i not in ids]
        if left_out:
            self._rows().finish(left_out, "skipped", "read or deleted before the mail went out")
        mail_id = str(uuid.uuid4())
        envelope = Envelope(mail_id, group.email, group.recipient_name, group.ticket_id, group.subject,
                            f"{s.app_url.rstrip('/')}/?t={group.ticket_id}")
        body = wire_body(compose(envelope, items, group.context, s.from_address))
        transport = self._transport()
        try:
            transport.begin(s.from_address, group.email, body)
        except SmtpRefused as exc:
            self._not_sent(ids, group.attempts, exc.outcome, str(exc))
            return []
        except (OSError, smtplib.SMTPException) as exc:
            transport.abort()
            self._not_sent(ids, group.attempts, Outcome.RETRY, f"SMTP connection: {exc}")
            return []
        if not self._rows().delivering(ids, mail_id):
            transport.abort()  # another worker took these over (our lease ran out): send nothing
            return []
        # from here on the mail may be delivered: these rows never go back to the queue unless the
        # server says it refused the mail
        try:
            code, message = transport.finish()
        except (OSError, smtplib.SMTPException) as exc:
            transport.abort()
            log.warning("no reply after handing over mail %s (%s); counted as sent", mail_id, exc)
            self._count(mails=1)
            return ids
        outcome = classify_reply(code)
        if outcome is Outcome.SENT:
            self._count(mails=1, sent=len(ids))
            return ids
        self._not_sent(ids, group.attempts + 1, outcome, f"SMTP {code} {message}", counted=True)
        return []

    def _not_sent(self, ids: list[int], attempts: int, outcome: Outcome, note: str, *, counted: bool = False
                  ) -> None:
        s = self.settings
        with self._lock:
            self.stats.errors.append(note)
        tries = attempts if counted else attempts + 1
        if outcome is Outcome.FAILED or tries >= s.max_attempts:
            log.error("giving up on notifications %s: %s", ids, note)
            self._rows().finish(ids, "failed", note)
            self._count(failed=len(ids))
            return
        after = backoff_seconds(tries, s.retry_base)
        log.warning("retrying notifications %s in %.1fs: %s", ids, after, note)
        self._rows().retry(ids, after, note, counted=counted)
        self._count(retried=len(ids))
