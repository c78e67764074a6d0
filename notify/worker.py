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
costs a few round trips, whatever its size, instead of a few per mail. Waves rotate through LANES lanes
of `connections` connections each: wave n's `delivering` commit and, the moment it returns, its "."s run
on a marking thread (a third database connection, same token), while the main thread reads older waves'
replies and begins the next waves on the lanes those freed, so the commit's round trip (and its WAL
flush) no longer stalls the SMTP side. Nothing about the order per mail changes: a mail's "." goes only
after its rows' `delivering` commit returned, and right after it, as before.

Recovery of other workers' rows runs when a claim finds nothing and otherwise every RECOVER_EVERY
seconds, not before every claim (it reads pg_locks and every waiting row: a few ms a batch, for rows
that are rare and only need to come back eventually).

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
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from notify.decisions import Outcome, address_refusal, backoff_seconds, classify_reply, select_items
from notify.mail import Envelope, compose
from notify.orphans import (
    DEFAULT_GRACE,
    PURGE_EVERY,
    PurgeError,
    StorageAdmin,
    purge_avatar_orphans,
    purge_orphans,
)
from notify.queue import Group, Outgoing, Queue
from notify.smtp import SmtpRefused, SmtpTarget, Transport, begin_many, wire_body

log = logging.getLogger("notify")

WAKE_EVERY = 10.0  # seconds between wake-ups of snoozed tickets
Handover = tuple[list[tuple[Transport, Outgoing]], list[tuple[Transport, Outgoing, Exception]]]  # handed, broken
RECOVER_EVERY = 5.0  # seconds between looks for dead workers' rows while there is work (always when idle)
LANES = 3  # sets of `connections` SMTP connections that waves rotate through


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
    storage: StorageAdmin | None = None  # with it, orphan attachments and avatars are purged (notify/orphans.py)
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
        self.lanes = [[Transport(self.target) for _ in range(settings.connections)] for _ in range(LANES)]
        self.transports = [t for lane in self.lanes for t in lane]
        # the `delivering` commits, on their own connection (same token) and thread, overlapping the SMTP side
        self._marks = self.queue.sibling()
        self._marker = ThreadPoolExecutor(1, thread_name_prefix="notify-mark")
        self.stats = Stats()
        self._next_wake = 0.0
        self._next_purge = 0.0
        self._recover_at: dict[int, float] = {}  # per claiming connection (id of its Queue): next recovery

    def close(self) -> None:
        for t in self.transports:
            t.close()
        self._marker.shutdown()
        self._marks.close()
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
        if s.storage is not None and time.monotonic() >= self._next_purge:  # and purges orphan Storage objects
            self._next_purge = time.monotonic() + PURGE_EVERY
            for purge in (purge_orphans, purge_avatar_orphans):
                try:
                    self.stats.purged += purge(self.queue.conn, s.storage, s.orphan_grace)
                except PurgeError as exc:  # Storage down or refusing: the objects wait for the next purge
                    log.warning("orphan purge: %s", exc)

    def _claim_batch(self, queue: Queue) -> list[Outgoing] | None:
        """Recover (now and then), claim due groups and compose their mails on `queue`; None when nothing
        was due, even after a recovery."""
        s = self.settings
        recovered = self._recover(queue, force=False)
        groups = queue.claim(delay=s.delay, groups=s.batch, lease=s.lease)
        if not groups and not recovered and self._recover(queue, force=True):
            groups = queue.claim(delay=s.delay, groups=s.batch, lease=s.lease)
        if not groups:
            return None
        return [mail for mail in (self._prepare(g, queue) for g in groups) if mail is not None]

    def _recover(self, queue: Queue, *, force: bool) -> bool:
        """Give back dead workers' rows if it is time (or `force`); whether a recovery ran."""
        now = time.monotonic()
        if not force and now < self._recover_at.get(id(queue), 0.0):
            return False
        self.stats.recovered += queue.recover()
        self._recover_at[id(queue)] = now + RECOVER_EVERY
        return True

    def _send_batch(self, outgoing: list[Outgoing]) -> None:
        """The batch in waves, rotating through the lanes; wave n is finished only once LANES - 1 later waves
        have begun (or the batch ended), so its `delivering` commit overlaps their SMTP round trips."""
        s = self.settings
        delivered: list[int] = []
        pending: deque[tuple[list[tuple[Transport, Outgoing]], Future[Handover]]] = deque()
        try:
            for n, start in enumerate(range(0, len(outgoing), s.connections)):
                begun = self._begin_wave(self.lanes[n % LANES], outgoing[start : start + s.connections])
                pending.append((begun, self._marker.submit(self._hand_over, begun)))
                while len(pending) >= LANES or (pending and start + s.connections >= len(outgoing)):
                    delivered += self._finish_wave(*pending.popleft())  # frees its lane for the next wave
        finally:
            while pending:  # something failed with waves under way: their "."s are still owed
                try:
                    delivered += self._finish_wave(*pending.popleft())
                except Exception as exc:  # the database went: its rows stay claimed, recovery requeues them
                    log.warning("could not finish a wave after an error: %s", exc)
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
        # a group whose mail cannot be made fails alone: raising here would fail the whole claimed batch, round
        # after round (its rows come back by recovery and are claimed with the same group again)
        refused = address_refusal(group.email)
        try:
            body = wire_body(compose(envelope, items, group.context, s.from_address)) if refused is None else b""
        except (UnicodeError, ValueError) as exc:
            refused = f"the mail could not be composed: {exc}"
        if refused is not None:
            log.error("giving up on notifications %s: %s", ids, refused)
            queue.finish(ids, "failed", refused)
            self.stats.failed += len(ids)
            return None
        return Outgoing(ids, group.attempts, mail_id, group.email, body)

    def _begin_wave(self, lane: list[Transport], wave: list[Outgoing]) -> list[tuple[Transport, Outgoing]]:
        """MAIL/RCPT/DATA and the body of up to one mail per connection of `lane`; the mails that now wait
        only for their "." (the others are back in the queue or failed)."""
        pairs = list(zip(lane, wave, strict=False))
        errors = begin_many([(t, m.recipient, m.body) for t, m in pairs], self.settings.from_address)
        begun: list[tuple[Transport, Outgoing]] = []
        for (transport, mail), error in zip(pairs, errors, strict=True):
            if error is None:
                begun.append((transport, mail))
            elif isinstance(error, SmtpRefused):
                self._not_sent(mail, error.outcome, str(error))
            else:
                self._not_sent(mail, Outcome.RETRY, f"SMTP connection: {error}")
        return begun

    def _hand_over(self, begun: list[tuple[Transport, Outgoing]]) -> Handover:
        """On the marking thread: commit `delivering` for the wave, then at once the "."s of the mails it held
        (the window in which a killed worker loses a mail stays as short as the commit's return). A mail whose
        rows another worker took over is dropped unfinished; a failed commit drops them all."""
        try:
            held = self._marks.delivering([m for _, m in begun])
        except BaseException:
            for transport, _ in begun:
                transport.abort()  # no "." without the commit: the server discards these half mails
            raise
        handed: list[tuple[Transport, Outgoing]] = []
        broken: list[tuple[Transport, Outgoing, Exception]] = []
        for transport, mail in begun:
            if mail.mail_id not in held:
                transport.abort()  # another worker took these over (our lease ran out): send nothing
                continue
            try:
                transport.end_data()
                handed.append((transport, mail))
            except (OSError, smtplib.SMTPException) as exc:
                broken.append((transport, mail, exc))
        return handed, broken

    def _finish_wave(self, begun: list[tuple[Transport, Outgoing]], marking: Future[Handover]) -> list[int]:
        """The replies to a wave's "."s, once it was handed over; returns the ids now waiting for their `sent`
        mark. From the `delivering` commit on, a held mail may be delivered: its rows never go back to the
        queue unless the server says it refused the mail."""
        handed, broken = marking.result()
        delivered: list[int] = []
        for transport, mail, exc in broken:
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
