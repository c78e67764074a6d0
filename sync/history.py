"""Edits and deletes of messages through the outbox (issue 13): what the user may do now, and how the Pusher
sends the ``message_edit`` and ``message_delete`` entries the cache queued (sync/cache/history.py).

- **Edit** is a compare-and-set: ``rpc edit_message(id, seen, content)`` changes the text only if the server's
  row still holds ``seen``, the text the user edited. An empty answer is decided against the server's row
  (``edit_outcome``): already our text (a lost answer, or a resend after a crash) → acknowledged, exactly
  once; changed by someone else → the edit loses, the server's text stays, the user's text goes back into
  the composer's draft and a Notice says so; deleted → the edit is dropped with the message. A refusal
  (edit window passed, closed ticket) is handled the same way with the server's reason in the Notice.
- **Delete** is a PATCH of ``deleted_at``; the server clears the text. A resend finds the tombstone and is
  acknowledged; a refusal (closed ticket, not the sender) drops the entry and puts the server's row back.

Retryable and auth errors propagate to the engine loop (the entry stays queued, nothing is decided).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sync import events
from sync.attachments import BUCKET
from sync.cache import Cache
from sync.cache.history import Revision
from sync.decisions import OutboxEntry, check_content
from sync.errors import PermanentError
from sync.models import LocalUser, Message, Role, TicketStatus
from sync.remote import Remote

log = logging.getLogger(__name__)

EditOutcome = Literal["applied", "conflict", "deleted", "gone", "refused"]
NoticeKind = Literal["message_edit_overruled", "message_edit_refused", "message_edit_lost", "message_delete_refused"]

DEFAULT_EDIT_WINDOW = 900.0  # seconds; the server's app_settings.edit_window_seconds replaces it


def edit_outcome(seen: str, wanted: str, server: Mapping[str, Any] | None) -> EditOutcome:
    """Why a compare-and-set edit changed nothing, from the server's row as it is now."""
    if server is None:
        return "gone"  # not visible to this user any more (reassigned away, or never theirs)
    if server.get("deleted_at"):
        return "deleted"
    if server.get("content") == wanted:
        return "applied"  # an earlier attempt landed and its answer was lost
    if server.get("content") == seen:
        return "refused"  # the text is as seen, yet the update matched nothing: not this user's to edit
    return "conflict"


def _created(message: Message) -> datetime | None:
    try:
        when = datetime.fromisoformat(message.created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def may_edit(message: Message, me: str, status: TicketStatus | None, window_seconds: float, now: datetime) -> bool:
    """Whether the server would take an edit of this message now: the sender's own, not deleted, ticket not
    closed, within the edit window (by this machine's clock; the server has the last word)."""
    if message.sender_id != me or message.deleted_at or status == "closed":
        return False
    if message.local_state != "sent":
        return True  # not on the server yet: the edit travels after it (or in its failed entry)
    created = _created(message)
    return created is not None and now <= created + timedelta(seconds=window_seconds)


def may_delete(message: Message, me: str, role: Role, status: TicketStatus | None) -> bool:
    """Whether the server would take a delete: the sender's own while the ticket is not closed, or an admin's."""
    if message.deleted_at:
        return False
    if role == "admin":
        return True
    return message.sender_id == me and status != "closed"


def edit_window(cache: Cache) -> float:
    """The project's edit window in seconds, as the last pull read it (``app_settings``), else the default."""
    value = cache.app_settings().get("edit_window_seconds")
    try:
        return float(value) if value is not None else DEFAULT_EDIT_WINDOW
    except (TypeError, ValueError):
        return DEFAULT_EDIT_WINDOW


async def _nothing_to_confirm() -> None:
    return None


class HistoryPush:
    """The Pusher's senders for ``message_edit`` and ``message_delete`` entries, one entry per request."""

    def __init__(
        self,
        cache: Cache,
        remote: Remote,
        emit: Callable[[events.Event], None],
        confirm: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.cache, self.remote, self.emit = cache, remote, emit
        # asked before a refusal is taken as one (the Pusher's `_confirm_session`): raises AuthError when the
        # refusal came from a token whose session had ended, and the entry stays queued
        self.confirm = confirm or _nothing_to_confirm

    async def _server_row(self, message_id: str) -> dict[str, Any] | None:
        try:
            return await self.remote.message(message_id)
        except PermanentError:
            return None

    def _changed(self, entry: OutboxEntry) -> None:
        self.emit(events.MessagesChanged(entry.ticket_id, frozenset({entry.entity_id}), False))
        self.emit(events.TicketsChanged(frozenset({entry.ticket_id})))

    def _notice(self, kind: NoticeKind, entry: OutboxEntry, text: str) -> None:
        self.emit(events.Notice(kind, entry.ticket_id, text))

    async def edit(self, entry: OutboxEntry) -> bool:
        """Send one edit; returns whether the server has it."""
        seen, wanted = str(entry.payload["seen"]), str(entry.payload["content"])
        if not await self.cache.still_queued(entry):
            return False  # dropped with an earlier edit of the same message that lost, or with its tombstone
        try:
            row = await self.remote.edit_message(entry.entity_id, seen, wanted)
            if row is None:
                server = await self.remote.message(entry.entity_id)
                outcome = edit_outcome(seen, wanted, server)
                if outcome == "gone":
                    raise PermanentError("you can no longer see this message", code="42501")
                if outcome == "refused":
                    raise PermanentError("only the sender edits a message", code="42501")
                if outcome == "deleted":
                    await self.cache.lose_edit(entry, server)
                    self._notice(
                        "message_edit_lost", entry, "A message you edited was deleted before the edit arrived."
                    )
                    self._changed(entry)
                    return False
                if outcome == "conflict":
                    await self.cache.lose_edit(entry, server)
                    self._notice(
                        "message_edit_overruled",
                        entry,
                        "Your message was changed elsewhere before your edit arrived; it keeps the server's text "
                        "and your edit is back in the composer.",
                    )
                    self._changed(entry)
                    return False
                row = server
        except PermanentError as exc:
            await self.confirm()
            await self.cache.lose_edit(entry, await self._server_row(entry.entity_id))
            self._notice(
                "message_edit_refused",
                entry,
                f"The server refused your edit: {exc.reason()}. Your text is back in the composer.",
            )
            self._changed(entry)
            return False
        await self.cache.settle(entry, row)
        self._changed(entry)
        return True

    async def _restore(self, entry: OutboxEntry, server: Mapping[str, Any]) -> None:
        """A delete the server refused: the message's attachment rows and revisions, dropped with its local
        tombstone, come back from the server (they are below the pull's cursors)."""
        files = await self.remote.rows_of_ticket("attachments", entry.ticket_id)
        staff = self.cache.role != "customer"
        revisions = await self.remote.rows_of_ticket("message_revisions", entry.ticket_id) if staff else []
        mine = [r for r in files if r.get("message_id") == entry.entity_id]
        kept = [r for r in revisions if r.get("message_id") == entry.entity_id]
        await self.cache.apply_backfill(entry.ticket_id, [dict(server)], [], mine, kept)

    async def purge(self, entry: OutboxEntry) -> bool:
        """Remove from Storage the files this user uploaded for a message deleted since (by them or an admin);
        a resend after a lost answer removes nothing more. A refusal leaves them to the service-role purge
        (``rpc attachment_objects_to_purge``)."""
        if not await self.cache.still_queued(entry):
            return False  # dropped: the delete before it was refused
        try:
            await self.remote.remove_files(BUCKET, [str(p) for p in entry.payload["paths"]])
        except PermanentError as exc:
            log.info("removing the files of deleted message %s refused: %s", entry.entity_id, exc)
        await self.cache.settle(entry, None)
        return True

    async def delete(self, entry: OutboxEntry) -> bool:
        """Send one delete; returns whether the server has it."""
        if not await self.cache.still_queued(entry):
            return False
        try:
            row = await self.remote.delete_message(entry.entity_id)
            if row is None:
                row = await self.remote.message(entry.entity_id)
                if row is None:
                    raise PermanentError("you can no longer see this message", code="42501")
                if not row.get("deleted_at"):
                    raise PermanentError("only the sender or an admin deletes a message", code="42501")
        except PermanentError as exc:
            await self.confirm()
            server = await self._server_row(entry.entity_id)
            await self.cache.settle(entry, server)
            if server is not None:
                await self._restore(entry, server)
            self._notice("message_delete_refused", entry, f"The server refused to delete your message: {exc.reason()}")
            self._changed(entry)
            return False
        await self.cache.settle(entry, row)
        self._changed(entry)
        return True


class HistoryCommands:
    """The user's edits and deletes as local commands: validated, written to the cache with their outbox entry in
    one transaction, then ``on_write`` (the engine wakes its loop) and the event the UI redraws on."""

    def __init__(
        self,
        cache: Cache,
        user: LocalUser,
        on_write: Callable[[], None],
        emit: Callable[[events.Event], None],
        *,
        discard: Callable[[str], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cache, self.user, self.wall = cache, user, wall
        self._on_write, self._emit, self._discard = on_write, emit, discard
        self._scrubs: set[asyncio.Task[None]] = set()

    def _message(self, message_id: str) -> Message:
        message = self.cache.message(message_id)
        if message is None:
            raise ValueError(f"no such message in the cache: {message_id}")
        return message

    def _changed(self, ticket_id: str, message_id: str) -> None:
        self._on_write()
        self._emit(events.MessagesChanged(ticket_id, frozenset({message_id}), False))
        self._emit(events.TicketsChanged(frozenset({ticket_id})))

    def may_edit(self, message: Message, now: datetime | None = None) -> bool:
        ticket = self.cache.ticket(message.ticket_id)
        when = now or datetime.fromtimestamp(self.wall(), UTC)
        return may_edit(message, self.user.id, ticket.status if ticket else None, edit_window(self.cache), when)

    def may_delete(self, message: Message) -> bool:
        ticket = self.cache.ticket(message.ticket_id)
        return may_delete(message, self.user.id, self.user.role, ticket.status if ticket else None)

    def edit_message(self, message_id: str, content: str) -> Message:
        """Replace the text of one's own message (shown at once; sent as a compare-and-set against the text it
        replaces). ValueError with the reason when the server would refuse it, nothing written."""
        check_content(content)
        message = self._message(message_id)
        if not self.may_edit(message):
            raise ValueError(_edit_refusal(message, self.user.id, self.cache))
        if self.cache.queue_edit(message_id, content) is not None:
            self._changed(message.ticket_id, message_id)
        return self._message(message_id)

    def delete_message(self, message_id: str) -> None:
        """Delete a message for everyone: its text leaves this cache at once (and every other one when the
        server has the delete). A message not yet on the server is simply discarded."""
        message = self._message(message_id)
        if message.local_state != "sent" and message.sender_id == self.user.id:
            self._discard(message_id)
            return
        if not self.may_delete(message):
            raise ValueError(
                "a message in a closed ticket cannot be deleted"
                if message.sender_id == self.user.id
                else "only the sender or an admin deletes a message"
            )
        if self.cache.queue_delete(message_id) is not None:
            self._changed(message.ticket_id, message_id)
            self._scrub()

    def _scrub(self) -> None:
        """Clear what SQLite keeps of the dropped text, in the background (a full rewrite of the search index)."""
        try:
            task = asyncio.get_running_loop().create_task(self.cache.scrub())
        except RuntimeError:  # no loop (a script): the next tombstone or close does it
            return
        self._scrubs.add(task)
        task.add_done_callback(self._scrubs.discard)

    def revisions(self, message_id: str) -> list[Revision]:
        """The earlier texts of an edited message, oldest first; staff only (a customer's cache has none)."""
        return self.cache.revisions(message_id) if self.user.is_staff else []


def _edit_refusal(message: Message, me: str, cache: Cache) -> str:
    if message.sender_id != me:
        return "only the sender edits a message"
    if message.deleted_at:
        return "a deleted message cannot be edited"
    ticket = cache.ticket(message.ticket_id)
    if ticket is not None and ticket.status == "closed":
        return "messages in a closed ticket cannot be edited"
    minutes = round(edit_window(cache) / 60, 1)
    return f"this message can no longer be edited: its edit window of {minutes:g} minutes has passed"
