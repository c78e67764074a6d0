"""Push: drain the outbox to the server, FIFO, in batches, exactly-once in effect.

Messages and tickets are created with upsert-on-id, ignore-duplicates, return=minimal: a batch
whose response was lost is simply sent again and the server keeps one copy. An entry leaves the
outbox only after the server acknowledged it (PowerSync's ``ps_crud`` discipline). A message batch the server
took fewer rows of than were sent (its insert count) is checked at once: a reply whose id the server holds under
another ticket or sender fails there (``_messages``), the reply's own row is acknowledged; a new ticket's
batch the same (``_tickets``: another customer's ticket under its id fails it with its messages). A batch the
server refuses as a whole (one bad row fails the statement) is bisected until the bad row is
alone; that row becomes ``failed`` with the server's reason and everything around it still goes —
unless the server already has it (a lost response, then a state change that makes the resend fail
RLS): then it is acknowledged like any delivered entry.

Retryable and auth errors propagate to the engine loop, which backs off or refreshes; nothing is
acknowledged or failed for them, so the next attempt resends the same entries.

Attachments travel as two kinds around their message: ``attachment_upload`` (the file, to Storage)
before it and ``attachment`` (the row describing it) after it; a refused file fails its whole message
(sync/cache/writes.py ``fail``), so nobody sees a message without its files. Files go through Storage's
resumable (TUS) endpoint with per-byte progress into ``uploads`` (sync/uploads.py, sync/tus.py). A file
uploaded long ago (in an earlier run, or more than ``fresh_for`` seconds before its message goes) may have
been purged meanwhile as an orphan by the server (notify/orphans.py: no row names it after the grace
period), so before such a message is sent its files are checked and, if gone, uploaded again from the queued
copy (kept until the row is sent) — a reply queued offline for days still goes out whole.

A new kind of outbox entry (attachments, edits, deletes) registers its batch sender in ``senders``:
a coroutine that sends a batch of entries of that kind in one request and raises the error tree.

The first read of a push, when the outbox is short (``SHORT_OUTBOX`` entries or fewer, the common case: a
message just typed), is made on the loop's own reader connection (``Cache.queued_at_once``) instead of on the
cache's writer thread: the hop to that thread and back (a few ms, 5-10 under load: issue 15's ``e2e_latency``
trace) was the last wait between a keypress and the request on the wire. Every write is committed before it
wakes the pusher, so the reader sees it (WAL); a bulk transaction held by the initial sync is not visible to the
reader, so then the read goes to the writer thread as before. Every later read of the same push (after an
acknowledge) is on the writer thread, so an entry is never read back from a snapshot older than its own
acknowledgement; at worst the first read is behind, and sends an entry again, which every sender already allows
for (a lost answer is resent the same way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync import cancel_file, canned_files, collision, events, hops, snooze_push, workspace_push
from sync.attachments import BUCKET
from sync.cache import Cache
from sync.cache.writes import FOREIGN_ID_ERROR, FOREIGN_TICKET_ERROR
from sync.decisions import OutboxEntry, bisect, plan_batches, resolve_ticket_update
from sync.errors import PermanentError
from sync.history import HistoryPush
from sync.models import STAFF_ROLES
from sync.remote import Remote
from sync.tus import UploadCancelled
from sync.uploads import Uploads, state_file

log = logging.getLogger(__name__)


@dataclass
class PushResult:
    sent: int = 0
    failed: int = 0


# a batch's sender returns the ids of its entries the server holds under another row (failed, never acknowledged:
# ``Pusher._messages``, ``Pusher._tickets``), or None when it took them all
BatchSender = Callable[[list[OutboxEntry]], Awaitable[set[str] | None]]
# at most this many queued entries are read on the loop's thread (a short read); a longer outbox is read on the
# writer thread, off the loop
SHORT_OUTBOX = 50
_RLS_REFUSED = 403  # Storage's status for a write its row-level security refused


class Pusher:
    def __init__(
        self,
        cache: Cache,
        remote: Remote,
        emit: Callable[[events.Event], None],
        max_batch: int = 500,
        uploads: Uploads | None = None,
    ) -> None:
        self.cache = cache
        self.remote = remote
        self.emit = emit
        self.max_batch = max_batch
        self.uploads = uploads or Uploads()
        self.fresh_for = 600.0  # seconds an upload of this process is trusted to still be on the server
        self._uploaded_at: dict[str, float] = {}  # attachment id → monotonic time its upload finished
        self._session_confirmed = False  # this push asked whether the session still lives (_confirm_session)
        # one request per batch of a kind; ticket updates are compare-and-sets, one by one (_update_ticket)
        self.senders: dict[str, BatchSender] = {
            "message": self._messages,
            "ticket_create": self._tickets,
            "read": lambda batch: remote.upsert_merge("ticket_reads", _payloads(batch), "ticket_id,user_id"),
            # one file per request (never batched); upsert, so a resend after a lost answer is harmless
            "attachment_upload": self._upload,
            "attachment": self._describe,
            # the newest choice only (one entry per user); the server fills user_id from the token
            "preferences": lambda batch: remote.upsert_merge(
                "notification_preferences", [batch[-1].payload], "user_id"
            ),
            # the agent workspace's rows, one per request (sync/workspace_push.py)
            "workspace": self._workspace,
            # a ticket's snooze, an upsert of its staff-only row (sync/snooze_push.py)
            "snooze": lambda batch: snooze_push.send(remote, batch),
        }
        # entries that decide their own outcome, one request each (edits are compare-and-sets: sync/history.py);
        # each returns whether the server has it
        history = HistoryPush(cache, remote, emit, self._confirm_session)
        self.one_by_one: dict[str, Callable[[OutboxEntry], Awaitable[bool]]] = {
            "message_edit": history.edit,
            "message_delete": history.delete,
            "attachment_purge": history.purge,
            cancel_file.CANCEL: lambda entry: cancel_file.push(cache, remote, entry),
        }

    async def push(self) -> PushResult:
        """Send everything queued; returns counts. Raises RetryableError/AuthError to stop early."""
        result = PushResult()
        self._session_confirmed = False
        # the first read of a short outbox on the loop's own reader connection (see the module docstring)
        entries: list[OutboxEntry] | None = self.cache.queued_at_once(SHORT_OUTBOX)
        while True:
            if entries is None:
                entries = await self.cache.queued(self.max_batch * 4)
            if not entries:
                return result
            for batch in plan_batches(entries, self.max_batch):
                failed = result.failed
                await self._send(batch, result)
                if batch[0].kind == "attachment_upload" or result.failed > failed:
                    # uploads take time and the queue may have changed meanwhile (a file cancelled), and a failure
                    # fails later entries with it (a message's files): read again
                    break
            entries = None

    async def _send(self, batch: list[OutboxEntry], result: PushResult) -> None:
        kind = batch[0].kind
        if kind == "ticket_update":
            for entry in batch:
                await self._update_ticket(entry, result)
            return
        if kind in self.one_by_one:
            for entry in batch:
                result.sent += await self.one_by_one[kind](entry)
            return
        held: set[str] | None = None
        try:
            sender = self.senders.get(kind)
            if sender is None:
                raise PermanentError(f"unknown outbox entry kind {kind!r}")
            _trace("push_sent", batch)
            held = await sender(batch)
        except PermanentError as exc:
            if len(batch) > 1:
                left, right = bisect(batch)
                await self._send(left, result)
                await self._send(right, result)
                return
            if not await self._already_there(batch[0]):
                await self._refused(batch[0], exc, result)
                return
        if held:
            batch = await self._held_elsewhere(batch, held, result)
        await self.cache.acknowledge(batch)
        _trace("acked", batch)
        result.sent += len(batch)
        self._changed(batch)

    async def _upload(self, batch: list[OutboxEntry]) -> None:
        for entry in batch:
            await self._upload_one(entry.payload)

    async def _upload_one(self, payload: Mapping[str, Any]) -> None:
        attachment_id, local = str(payload["id"]), Path(str(payload["local_path"]))
        if self.uploads.is_cancelled(attachment_id):
            return  # cancelled by the user: its entry is gone, the cancel entry cleans up (sync/cancel_file.py)
        if not local.exists():
            raise PermanentError("the queued copy of this file is gone from this computer", code="ENOENT")
        try:
            await self.remote.upload_resumable(
                BUCKET,
                str(payload["object_path"]),
                local,
                str(payload["mime"]),
                progress=self.uploads.reporter(attachment_id),
                state=state_file(local),
            )
        except UploadCancelled:
            log.info("upload of %s cancelled by the user", attachment_id)
            return
        self._uploaded_at[attachment_id] = time.monotonic()

    async def _tickets(self, batch: list[OutboxEntry]) -> set[str]:
        """New tickets inserted, ignoring ids the server has; as ``_messages`` does, fewer rows inserted than sent
        asks who holds those ids: the ticket's own row (a resend after a lost answer: the same customer) is
        acknowledged; another customer's ticket, or one this user may not read, fails the new ticket with all
        that is queued for it (sync/cache/foreign_tickets.py), where before it was acknowledged and its messages
        went to the other's ticket (or were refused for it). A REST read (RLS) is enough here, unlike
        ``_messages``: a new ticket's customer is this user (``Commands.create_ticket``), and a customer reads
        every ticket of theirs (``tickets_select``), so their own row never hides from them. Returns the ids held
        by another ticket."""
        inserted = await self.remote.insert_ignore("tickets", _payloads(batch), "id")
        if inserted is None or inserted >= len(batch):
            return set()
        owners = await self.remote.ticket_owners([e.entity_id for e in batch])
        return {e.entity_id for e in batch if owners.get(e.entity_id) != str(e.payload["customer_id"])}

    async def _messages(self, batch: list[OutboxEntry]) -> set[str]:
        """The batch inserted, ignoring ids the server has. Fewer rows inserted than sent (the server's count) means
        some ids were there: a resend after a lost answer (the reply's own row), or another message under a reply's
        id (only a compromised server makes one: ``writes.fail_foreign``). Which is which is asked at once: a
        reply acknowledged as sent there stayed so until a pull found the other row (fix17), or for good when this
        user cannot read that row. The server answers without this user's RLS (``Remote.messages_not_mine``): a
        REST read failed the user's own delivered reply when its ticket was reassigned away before the read
        (review17c). Returns the ids held by another row."""
        await self._still_uploaded([e.entity_id for e in batch])
        inserted = await self.remote.insert_ignore("messages", _payloads(batch), "id")
        if inserted is None or inserted >= len(batch):
            return set()
        return await self.remote.messages_not_mine([_meant(e) for e in batch])

    async def _held_elsewhere(self, batch: list[OutboxEntry], held: set[str], result: PushResult) -> list[OutboxEntry]:
        """Fail the replies or new tickets whose ids another row holds on the server (``FOREIGN_ID_ERROR``: "Send
        as a new message", ``FOREIGN_TICKET_ERROR``: "Send as a new ticket", is what is left); returns the rest of
        the batch, delivered."""
        kind = batch[0].kind
        log.info("the server holds other rows under the ids of %s %s", kind, sorted(held))
        if kind == "ticket_create":
            result.failed += len(held)
            for ticket_id, ids in (await self.cache.foreign_tickets.fail(held)).items():
                self.emit(events.TicketsChanged(frozenset({ticket_id})))
                self.emit(events.MessagesChanged(ticket_id, frozenset(ids), False))
                text = f"The server refused a new ticket: {FOREIGN_TICKET_ERROR}"
                self.emit(events.Notice("ticket_failed", ticket_id, text))
        else:
            await self._fail_foreign(held, result)
        return [e for e in batch if e.entity_id not in held]

    async def _fail_foreign(self, message_ids: set[str], result: PushResult) -> None:
        """Fail these replies for their ids with what is queued for them (``FOREIGN_ID_ERROR``)."""
        result.failed += len(message_ids)
        for ticket_id, ids in (await self.cache.fail_foreign(message_ids)).items():
            self.emit(events.MessagesChanged(ticket_id, frozenset(ids), False))
            text = f"The server refused a message: {FOREIGN_ID_ERROR}"
            self.emit(events.Notice("message_failed", ticket_id, text))

    async def _upload_refused_for_its_id(self, entry: OutboxEntry, exc: PermanentError) -> bool:
        """Whether Storage refused this file for its message's id: another user's message holds it (the upload policy,
        migration 20261129000400: the path's message must be new or the uploader's own), which leaves only "Send as
        a new message". The files go before their message, so this refusal comes before the message's insert could
        tell (``_messages``). RLS's other grounds are the path's ticket: one this user may not read, or a closed
        one for a customer; so a refusal by RLS (403) of an upload into a ticket the server shows this user, open
        or written by staff, is the id's. Anything else keeps the server's reason."""
        if entry.kind != "attachment_upload" or exc.status != _RLS_REFUSED or not entry.ticket_id:
            return False
        rows = await self.remote.select_where("tickets", {"id": entry.ticket_id})
        return bool(rows) and (self.cache.role in STAFF_ROLES or rows[0].get("status") != "closed")

    async def _still_uploaded(self, message_ids: list[str]) -> None:
        """Upload again the files of these messages that are no longer on the server (purged as orphans while
        their client was away longer than the server's grace period). Uploads of the last ``fresh_for`` seconds
        are trusted; older ones are asked about, one request per file."""
        now = time.monotonic()
        for row in self.cache.uploaded_attachments(message_ids):
            attachment_id = str(row["id"])
            if not row["local_path"]:
                continue
            at = self._uploaded_at.get(attachment_id)
            if at is not None and now - at < self.fresh_for:
                continue
            if await self.remote.object_exists(BUCKET, str(row["object_path"])):
                self._uploaded_at[attachment_id] = now
                continue
            log.info("attachment %s vanished from Storage before its message was sent; uploading it again", row["id"])
            await self._upload_one(row)

    async def _describe(self, batch: list[OutboxEntry]) -> None:
        """Attachment rows; a row refused because its object is gone (purged between the check before the message
        and now) gets its file uploaded again and is sent once more."""
        try:
            await self.remote.insert_ignore("attachments", _payloads(batch), "id")
        except PermanentError as exc:
            if exc.code != "23503" or "upload the file" not in str(exc):
                raise
            for entry in batch:
                row = self.cache.attachment(entry.entity_id)
                if row is not None and row["local_path"]:
                    if not await self.remote.object_exists(BUCKET, str(row["object_path"])):
                        await self._upload_one(row)
            await self.remote.insert_ignore("attachments", _payloads(batch), "id")

    async def _workspace(self, batch: list[OutboxEntry]) -> None:
        for entry in batch:
            await canned_files.upload_queued(self.cache, self.remote, entry)  # a canned reply's file: bytes first
            await workspace_push.send(self.remote, entry)

    async def _already_there(self, entry: OutboxEntry) -> bool:
        """Whether a refused create had in fact landed: an earlier attempt committed but its response was
        lost, and the server's state changed before the resend (the ticket was closed meanwhile), so the
        resend fails RLS's WITH CHECK although the row is there. Then the entry is acknowledged, not failed."""
        table = {"message": "messages", "ticket_create": "tickets", "attachment": "attachments"}.get(entry.kind)
        if entry.kind == "workspace":
            try:
                return await workspace_push.already_there(self.remote, entry)
            except PermanentError:
                return False
        if table is None:
            return False
        try:
            if entry.kind in ("message", "ticket_create"):
                return await self._own_row(entry)
            return await self.remote.exists(table, entry.entity_id)
        except PermanentError:
            return False

    async def _own_row(self, entry: OutboxEntry) -> bool:
        """Whether the server's row under this reply's or new ticket's id is its own, not another's under its id
        (``_messages``, ``_tickets``)."""
        if entry.kind == "message":
            return entry.entity_id not in await self.remote.messages_not_mine([_meant(entry)])
        customers = await self.remote.ticket_owners([entry.entity_id])
        return customers.get(entry.entity_id) == str(entry.payload["customer_id"])

    async def _confirm_session(self) -> None:
        """Before a refusal is taken as one: does this token's session still live? A staff member whose session
        ended elsewhere (signed out everywhere, a password changed on another device, an invitation accepted) keeps
        an unexpired token with a customer's rights only (migration 20261213000100), so RLS refuses their writes;
        those are no refusals of the entries, which stay queued while the loop asks the user to sign in again.
        ``sync_status`` answers PT401 (AuthError) for an ended session; asked once per push, and only on a refusal
        (review15b: the push ran before the pull that would have noticed, and failed or dropped the queue)."""
        if self._session_confirmed:
            return
        self._session_confirmed = True
        try:
            await self.remote.status({})  # AuthError (ended) and RetryableError (offline) stop the push: kept queued
        except PermanentError as exc:  # a server without sync_status: the refusal stands as before
            log.info("could not ask whether the session lives: %s", exc)

    async def _refused(self, entry: OutboxEntry, exc: PermanentError, result: PushResult) -> None:
        await self._confirm_session()
        reason = exc.reason()
        log.info("server refused %s %s: %s", entry.kind, entry.entity_id, exc)
        if entry.kind == "read":
            # a read marker for a ticket this user can no longer see: nothing to show or retry
            await self.cache.drop(entry)
            return
        if entry.kind == "workspace":
            # like a ticket change: dropped, the server's row shown again with the reason, and a Notice
            row = await workspace_push.server_row(self.remote, entry)
            await self.cache.workspace.refused(entry, reason, row)
            self.emit(events.WorkspaceChanged(frozenset({str(entry.payload["table"])})))
            if entry.ticket_id:
                self.emit(events.TicketsChanged(frozenset({entry.ticket_id})))
            self.emit(
                events.Notice(
                    "workspace_refused",
                    entry.ticket_id or None,
                    f"The server refused your change to {workspace_push.label(entry)}: {reason}",
                )
            )
            return
        if entry.kind == "snooze":
            await snooze_push.refused(self.cache, self.remote, entry, reason, self.emit)
            return
        if entry.kind == "ticket_update":
            # the server's RLS and state win: the change is dropped (nothing to retry), the ticket
            # shows the server's row again with the reason, and the user gets a Notice
            await self.cache.drop(entry, ticket_error=reason)
            self._changed([entry])
            self.emit(
                events.Notice(
                    "ticket_update_refused", entry.ticket_id, f"The server refused your change to this ticket: {reason}"
                )
            )
            return
        if await self._upload_refused_for_its_id(entry, exc):
            await self._fail_foreign({str(entry.payload["message_id"])}, result)
            return
        await self.cache.fail(entry, reason)
        result.failed += 1
        self._changed([entry])
        what = "message" if entry.kind in ("message", "attachment_upload", "attachment") else "ticket"
        self.emit(events.Notice(f"{what}_failed", entry.ticket_id, f"The server refused a {what}: {reason}"))

    async def _update_ticket(self, entry: OutboxEntry, result: PushResult) -> None:
        """A compare-and-set per ticket; see ``decisions.resolve_ticket_update`` for the rule. A take goes
        through the server's ``take_ticket`` first (sync/collision.py)."""
        if collision.is_take(entry, self.cache.me):
            rest = await self._take(entry, result)
            if rest is None:
                return
            entry = rest
        base = dict(entry.payload["base"])
        wanted = dict(entry.payload["wanted"])
        try:
            rows = await self.remote.update_ticket(entry.entity_id, wanted, base)
            overruled: dict[str, object] = {}
            if not rows:
                server = await self.remote.ticket(entry.entity_id)
                if server is None:
                    raise PermanentError(
                        "you can no longer change this ticket: it was reassigned, closed to you "
                        "or deleted while you were offline",
                        code="42501",
                    )
                send, overruled = resolve_ticket_update(base, wanted, server)
                rows = [server]
                if send:
                    rows = await self.remote.update_ticket(entry.entity_id, send, {k: server.get(k) for k in send}) or [
                        server
                    ]
        except PermanentError as exc:
            server_row = None
            try:
                server_row = await self.remote.ticket(entry.entity_id)
            except PermanentError:
                server_row = None
            await self._refused(entry, exc, result)
            if server_row is not None:
                await self.cache.apply_server_ticket(server_row)
            return
        await self.cache.acknowledge([entry], server_tickets=rows)
        result.sent += 1
        self._changed([entry])
        if overruled:
            fields = ", ".join(f"{k} is {v if v is not None else 'unassigned'}" for k, v in overruled.items())
            self.emit(
                events.Notice(
                    "ticket_update_overruled",
                    entry.entity_id,
                    f"Someone changed this ticket while you were offline; the server kept: {fields}",
                )
            )

    async def _take(self, entry: OutboxEntry, result: PushResult) -> OutboxEntry | None:
        """Take the ticket on the server; returns the rest of the entry to send, or None when it is done with:
        taken and nothing else to send (acknowledged), refused, or someone else was first (dropped, the agent
        told who)."""
        try:
            try:
                taken = collision.TakeResult.from_row(await self.remote.take_ticket(entry.entity_id))
            except ValueError as exc:
                raise PermanentError(str(exc)) from exc
        except PermanentError as exc:
            await self._refused(entry, exc, result)
            return None
        server = await self.remote.ticket(entry.entity_id)
        if taken.outcome != "lost":
            rest = collision.without_take(entry)
            if rest.payload["wanted"]:
                return rest
            await self.cache.acknowledge([entry], server_tickets=[server] if server else [])
            result.sent += 1
            self._changed([entry])
            return None
        text = collision.lost_text(taken)
        await self.cache.drop(entry, ticket_error=text)
        if server is not None:  # an admin still sees it; an agent's copy leaves with the next pull
            await self.cache.apply_server_ticket(server)
        self._changed([entry])
        self.emit(events.Notice("ticket_taken", entry.entity_id, text))
        return None

    def _changed(self, entries: Sequence[OutboxEntry]) -> None:
        tickets: dict[str, set[str]] = {}
        ticket_ids: set[str] = set()
        tables: set[str] = set()
        for e in entries:
            if e.kind == "message":
                tickets.setdefault(e.ticket_id, set()).add(e.entity_id)
            elif e.kind in ("attachment_upload", "attachment"):
                tickets.setdefault(e.ticket_id, set()).add(str(e.payload["message_id"]))
            elif e.kind == "workspace":
                tables.add(str(e.payload["table"]))
                if e.ticket_id:
                    ticket_ids.add(e.ticket_id)
            elif e.kind != "read":
                ticket_ids.add(e.entity_id)
        for ticket_id, ids in tickets.items():
            self.emit(events.MessagesChanged(ticket_id, frozenset(ids), False))
        if ticket_ids:
            self.emit(events.TicketsChanged(frozenset(ticket_ids)))
        if tables:
            self.emit(events.WorkspaceChanged(frozenset(tables)))


def _payloads(batch: Sequence[OutboxEntry]) -> list[dict[str, object]]:
    return [dict(e.payload) for e in batch]


def _meant(entry: OutboxEntry) -> tuple[str, str]:
    """A queued message's id and ticket, as ``Remote.messages_not_mine`` asks them (the sender is the caller)."""
    return entry.entity_id, str(entry.payload["ticket_id"])


def _trace(hop: str, batch: Sequence[OutboxEntry]) -> None:
    """Stamp a batch of messages for the hop trace (sync/hops.py); nothing when it is off."""
    if hops.enabled() and batch[0].kind == "message":
        for entry in batch:
            hops.mark(hop, entry.entity_id)
