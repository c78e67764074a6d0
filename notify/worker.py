"""The notification worker's loop: recover, claim due groups, decide, compose, send, record.

Per group (one recipient, one ticket): the preference and the read marker decide what goes
(decisions.select_items); a mail is composed (mail.compose); the transport runs MAIL/RCPT/DATA and the
body; the rows are marked `delivering` in one committed statement; only then the final "." is sent.
The server's reply marks them `sent` (2xx), back to the queue with backoff (4xx, or a connection that
failed before the "."), or `failed` (5xx, or too many attempts). A worker killed at any point either
had not sent the "." (its rows are `claimed`: recovery queues them again, the server discarded the
half mail) or had (its rows are `delivering`: recovery counts them as sent). Nothing is sent twice;
what can be lost is a mail whose "." was refused with a 4xx in the instant the worker died, or one
whose "." had not left yet when the worker died right after the `delivering` commit.

Mails go out in waves over `connections` SMTP connections, one mail per connection: every mail of a
wave is brought up to its "." first (the connections in lockstep, smtp.begin_many), then one statement
marks the whole wave `delivering`, then the "."s go out back to back and the replies are read. A wave
costs a few round trips, whatever its size, instead of a few per mail.

`run` claims one batch ahead: a second thread, on its own database connection under the same claim
token, recovers, claims and composes batch n+1 while batch n goes out, so the database round trips and
the composing overlap the SMTP waits. The threads share no connection; a stopped worker hands the batch
it claimed ahead back to the queue, and a dead one loses its liveness lock, which recovery sees.
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
from notify.orphans import DEFAULT_GRACE, PURGE_EVERY, PurgeError, StorageAdmin, purge_orphans
from notify.queue import Group, Outgoing, Queue
from notify.smtp import SmtpRefused, SmtpTarget, Transport, begin_many, wire_body

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
    connections: int = 8  # SMTP connections, so mails per wave
    storage: StorageAdmin | None = None  # with it, orphan attachment objects are purged (notify/orphans.py)
    orphan_grace: float = DEFAULT_GRACE


@dataclass
class Stats:
    mails: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    woken: int = 0
    purged: int = 0
    errors: list[str] = field(default_factory=list)


class Worker:
    """One worker process's loop; run several against one database (each claims its own groups)."""

    def __init__(self, settings: Settings) -> None:
        if settings.connections < 1:
            raise ValueError("--connections must be at least 1")
        self.settings = settings
        self.target = SmtpTarget.parse(settings.smtp_url)
        self.queue = Queue(settings.db_url)
        self.transports = [Transport(self.target) for _ in range(settings.connections)]
        self.stats = Stats()
        self._next_wake = 0.0
        self._next_purge = 0.0

    def close(self) -> None:
        for t in self.transports:
            t.close()
        self.queue.close()

    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> Stats:
        """Work until `stop` is set (or, with `once`, until nothing is due).

        Pipelined: while one batch goes out over SMTP, a second thread (its own database connection, the
        same claim token) recovers, claims and composes the next one, so the database's round trips and
        the composing overlap the SMTP waits instead of adding to them. Only one batch is ever claimed
        ahead; a worker that stops hands it back (and one that dies loses its lock, so recovery does)."""
        stop = stop or threading.Event()
        ahead = self.queue.sibling()
        pool = ThreadPoolExecutor(1, thread_name_prefix="notify-claim")
        pending: Future[list[Outgoing] | None] | None = None
        try:
            while not stop.is_set():
                self._wake_snoozed()
                batch = pending.result() if pending is not None else self._claim_batch(ahead)
                pending = None
                if batch is None:
                    for t in self.transports:
                        t.close()  # no idle connection held open between rounds
                    if once or stop.wait(self.settings.poll):
                        break
                    continue
                pending = pool.submit(self._claim_batch, ahead)
                self._send_batch(batch)
        finally:
            if pending is not None:
                left = pending.result()
                self.queue.release([i for mail in left or [] for i in mail.ids])
            pool.shutdown()
            ahead.close()
        return self.stats

    def _wake_snoozed(self) -> None:
        if time.monotonic() >= self._next_wake:
            # the worker is the server-side process a deployment already runs: it also wakes snoozed tickets
            self.stats.woken += self.queue.wake_snoozed()
            self._next_wake = time.monotonic() + WAKE_EVERY
        s = self.settings
        if s.storage is not None and time.monotonic() >= self._next_purge:  # and purges orphan attachment objects
            self._next_purge = time.monotonic() + PURGE_EVERY
            try:
                self.stats.purged += purge_orphans(self.queue.conn, s.storage, s.orphan_grace)
            except PurgeError as exc:  # Storage down or refusing: the objects wait for the next purge
                log.warning("orphan purge: %s", exc)

    def _claim_batch(self, queue: Queue) -> list[Outgoing] | None:
        """Recover, claim due groups and compose their mails on `queue`; None when nothing was due."""
        s = self.settings
        self.stats.recovered += queue.recover()
        groups = queue.claim(delay=s.delay, groups=s.batch, lease=s.lease)
        if not groups:
            return None
        return [mail for mail in (self._prepare(g, queue) for g in groups) if mail is not None]

    def _send_batch(self, outgoing: list[Outgoing]) -> None:
        s = self.settings
        delivered: list[int] = []
        try:
            for start in range(0, len(outgoing), s.connections):
                delivered += self._send_wave(outgoing[start : start + s.connections])
        finally:
            self.queue.sent(delivered)

    def step(self) -> bool:
        """One round without claiming ahead: recover, claim a batch and send it. False when nothing was due."""
        self._wake_snoozed()
        batch = self._claim_batch(self.queue)
        if batch is None:
            for t in self.transports:
                t.close()  # no idle connection held open between rounds
            return False
        self._send_batch(batch)
        return True

    def _prepare(self, group: Group, queue: Queue | None = None) -> Outgoing | None:
        """Decide and compose one group's mail; None when the group is skipped (and recorded so on `queue`)."""
        s = self.settings
        queue = queue or self.queue
        items, skip = select_items(group.preference, group.last_read_at, group.items)
        if skip is not None or not group.email:
            queue.finish(group.ids, "skipped", skip or "recipient has no email address")
            self.stats.skipped += 1
            return None
        ids = [i.notification_id for i in items]
        left_out = [i for i in group.ids if i not in ids]
        if left_out:
            queue.finish(left_out, "skipped", "read or deleted before the mail went out")
        mail_id = str(uuid.uuid4())
        envelope = Envelope(
            mail_id,
            group.email,
            group.recipient_name,
            group.ticket_id,
            group.subject,
            f"{s.app_url.rstrip('/')}/?t={group.ticket_id}",
        )
        return Outgoing(
            ids,
            group.attempts,
            mail_id,
            group.email,
            wire_body(compose(envelope, items, group.context, s.from_address)),
        )

    def _send_wave(self, wave: list[Outgoing]) -> list[int]:
        """Up to one mail per connection; returns the ids now waiting for their `sent` mark."""
        s = self.settings
        pairs = list(zip(self.transports, wave, strict=False))
        errors = begin_many([(t, m.recipient, m.body) for t, m in pairs], s.from_address)
        begun: list[tuple[Transport, Outgoing]] = []
        for (transport, mail), error in zip(pairs, errors, strict=True):
            if error is None:
                begun.append((transport, mail))
            elif isinstance(error, SmtpRefused):
                self._not_sent(mail, error.outcome, str(error))
            else:
                self._not_sent(mail, Outcome.RETRY, f"SMTP connection: {error}")
        held = self.queue.delivering([m for _, m in begun])
        # from here on a held mail may be delivered: its rows never go back to the queue unless the
        # server says it refused the mail
        handed: list[tuple[Transport, Outgoing]] = []
        delivered: list[int] = []
        for transport, mail in begun:
            if mail.mail_id not in held:
                transport.abort()  # another worker took these over (our lease ran out): send nothing
                continue
            try:
                transport.end_data()
                handed.append((transport, mail))
            except (OSError, smtplib.SMTPException) as exc:
                delivered += self._unknown(transport, mail, exc)
        for transport, mail in handed:
            try:
                code, message = transport.reply()
            except (OSError, smtplib.SMTPException) as exc:
                delivered += self._unknown(transport, mail, exc)
                continue
            outcome = classify_reply(code)
            if outcome is Outcome.SENT:
                self.stats.mails += 1
                self.stats.sent += len(mail.ids)
                delivered += mail.ids
            else:
                self._not_sent(mail, outcome, f"SMTP {code} {message}", counted=True)
        return delivered

    def _unknown(self, transport: Transport, mail: Outgoing, exc: BaseException) -> list[int]:
        """The connection failed once the "." may have gone: at most once, so it counts as sent."""
        transport.abort()
        log.warning("no reply after handing over mail %s (%s); counted as sent", mail.mail_id, exc)
        self.stats.mails += 1
        return mail.ids

    def _not_sent(self, mail: Outgoing, outcome: Outcome, note: str, *, counted: bool = False) -> None:
        """Back to the queue with backoff, or failed for good; `counted`: `delivering` counted the try."""
        s = self.settings
        self.stats.errors.append(note)
        tries = mail.attempts + 1
        if outcome is Outcome.FAILED or tries >= s.max_attempts:
            log.error("giving up on notifications %s: %s", mail.ids, note)
            self.queue.finish(mail.ids, "failed", note)
            self.stats.failed += len(mail.ids)
            return
        after = backoff_seconds(tries, s.retry_base)
        log.warning("retrying notifications %s in %.1fs: %s", mail.ids, after, note)
        self.queue.retry(mail.ids, after, note, counted=counted)
        self.stats.retried += len(mail.ids)
