"""The signed-in user's local commands: what the UI and the CLI change, offline or not.

Each command is validated (ValueError with a plain reason, nothing written), then written to the ``Cache``
in one transaction together with its outbox entry, then ``on_write`` (the engine counts the outbox and
wakes its loop, whose ``Pusher`` sends the entry) and the event the UI redraws on. Nothing here talks to
the server. Drafts are saved here too (no outbox: they never leave the device).

Adding a command: a ``Cache.queue_*`` verb (sync/cache/writes.py), a method here, a sender in
``Pusher.senders`` (sync/push.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync import cancel_file, events, hops, preferences
from sync.attachment_files import AttachmentFiles
from sync.cache import Cache
from sync.cache.writes import FOREIGN_ID_ERROR, FOREIGN_TICKET_ERROR
from sync.decisions import TICKET_PRIORITIES, TICKET_STATUSES, check_choice, check_content, check_subject
from sync.models import UNSET, LocalUser, Message, Priority, Ticket, TicketStatus, Unset


@dataclass(frozen=True)
class Resent:
    """What ``LocalCommands.send_as_new`` queued: the new message, and the names of the refused reply's files that
    were no longer on this device, so it went without them."""

    message: Message
    left_out: tuple[str, ...]


class LocalCommands:
    def __init__(
        self,
        cache: Cache,
        user: LocalUser,
        files: AttachmentFiles,
        on_write: Callable[[], None],
        emit: Callable[[events.Event], None],
    ) -> None:
        self.cache, self.user, self.files = cache, user, files
        self._on_write, self._emit = on_write, emit

    # --- messages -------------------------------------------------------------------------------------

    def send_message(self, ticket_id: str, content: str, internal: bool = False, files: Sequence[Path] = ()) -> Message:
        """Queue a message (shown at once as pending) and clear the ticket's draft, in one transaction.

        With ``files``, each is checked against the attachments bucket's limits first (a refused file
        raises ValueError with the reason and nothing is queued), copied into the cache's files folder,
        and queued with the message: uploads first, then the message, then the attachment rows."""
        cache, user = self.cache, self.user
        check_content(content)
        if internal and not user.is_staff:
            raise ValueError("only agents can write internal notes")
        message_id = str(uuid.uuid4())
        row = {
            "id": message_id,
            "ticket_id": ticket_id,
            "sender_id": user.id,
            "content": content,
            "is_internal": 1 if internal else 0,
        }
        if files:
            records = self.files.stage(ticket_id, message_id, files)
            try:
                cache.queue_message_with_files(row, records)
            except BaseException:
                self.files.unstage([str(record["local_path"]) for record in records])
                raise
        else:
            cache.queue_message(row)
        hops.mark("outbox", message_id)
        self._on_write()
        self._emit(events.MessagesChanged(ticket_id, frozenset({message_id}), False))
        message = cache.message(message_id)
        assert message is not None
        return message

    def retry(self, message_id: str) -> None:
        cache = self.cache
        if not cache.retry_message(message_id):
            message = cache.message(message_id)
            raise ValueError(
                message.error
                if message and message.error in (FOREIGN_ID_ERROR, FOREIGN_TICKET_ERROR)
                else "only a failed message can be retried"
            )
        self._on_write()
        message = cache.message(message_id)
        if message is not None:
            self._emit(events.MessagesChanged(message.ticket_id, frozenset({message_id}), False))

    @staticmethod
    def refused_for_its_id(message: Message) -> bool:
        """Whether this failed reply can only go as a new message (``send_as_new``), never by a retry."""
        return message.local_state == "failed" and message.error == FOREIGN_ID_ERROR

    def send_as_new(self, message_id: str) -> Resent:
        """A reply the server refused for its id (another row holds it: ``FOREIGN_ID_ERROR``) queued again as a new
        message: a new id, the same ticket, text, kind and files; the refused one goes. Retrying it is refused,
        since under the same id it would be taken for delivered. A file of it no longer on this device is left out
        (``Resent.left_out`` names it, for the bubble to say), and with none left the text still goes (a message
        always has text): refusing there left only Discard, which lost the text. ValueError for any other message
        (nothing changed then)."""
        old = self.cache.message(message_id)
        if old is None or not self.refused_for_its_id(old):
            raise ValueError("only a reply refused for its id can be sent as a new message")
        files = self.cache.attachments(message_id)
        present = [f for f in files if f["local_path"] and Path(str(f["local_path"])).exists()]
        left_out = tuple(str(f["name"]) for f in files if f not in present)
        paths = [Path(str(f["local_path"])) for f in present]
        new_id = str(uuid.uuid4())
        row = {
            "id": new_id,
            "ticket_id": old.ticket_id,
            "sender_id": self.user.id,
            "content": old.content,
            "is_internal": 1 if old.is_internal else 0,
        }
        records = self.files.stage(old.ticket_id, new_id, paths, [str(f["name"]) for f in present])
        try:
            resent = self.cache.resend_message(message_id, row, records)
        except BaseException:
            self.files.unstage([str(record["local_path"]) for record in records])
            raise
        if not resent:
            self.files.unstage([str(record["local_path"]) for record in records])
            raise ValueError("this reply was sent or discarded meanwhile")
        cancel_file.discarded(self.cache, self.files, files)  # the refused reply's own copies (and uploads) go
        hops.mark("outbox", new_id)
        self._on_write()
        self._emit(events.MessagesChanged(old.ticket_id, frozenset({message_id, new_id}), False))
        message = self.cache.message(new_id)
        assert message is not None
        return Resent(message, left_out)

    def discard(self, message_id: str) -> None:
        cache = self.cache
        message = cache.message(message_id)
        files = cache.attachments(message_id)
        if not cache.discard_message(message_id):
            raise ValueError("only a pending or failed message can be discarded")
        cancel_file.discarded(cache, self.files, files)  # copies, running and partial uploads go with it
        self._on_write()
        if message is not None:
            self._emit(events.MessagesChanged(message.ticket_id, frozenset({message_id}), False))

    def cancel_file(self, attachment_id: str, content: str | None = None) -> None:
        """Send a queued message without one of its files (and with ``content`` as its text, if given);
        see sync/cancel_file.py. ValueError when the file's message is already sent."""
        row = cancel_file.cancel(self.cache, self.files, attachment_id, content)
        self._on_write()
        self._emit(events.MessagesChanged(str(row["ticket_id"]), frozenset({str(row["message_id"])}), False))

    # --- tickets --------------------------------------------------------------------------------------

    def create_ticket(self, subject: str, first_message: str, priority: str = "normal") -> Ticket:
        cache, user = self.cache, self.user
        subject = check_subject(subject)
        check_content(first_message)
        check_choice(priority, TICKET_PRIORITIES, "priority")
        ticket_id = str(uuid.uuid4())
        cache.queue_ticket(
            {
                "id": ticket_id,
                "customer_id": user.id,
                "assignee_id": None,
                "subject": subject,
                "status": "open",
                "priority": priority,
            },
            {
                "id": str(uuid.uuid4()),
                "ticket_id": ticket_id,
                "sender_id": user.id,
                "content": first_message,
                "is_internal": 0,
            },
        )
        self._on_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id})))
        ticket = cache.ticket(ticket_id)
        assert ticket is not None
        return ticket

    @staticmethod
    def not_created(ticket: Ticket) -> bool:
        """Whether this new ticket was refused for its id: it goes only as a new ticket (``send_as_new_ticket``)."""
        return ticket.local_state == "failed" and ticket.error == FOREIGN_TICKET_ERROR

    @staticmethod
    def held_with_its_ticket(message: Message) -> bool:
        """Whether this message failed with its new ticket, refused for its id (it goes with the ticket, never by a
        retry of its own)."""
        return message.local_state == "failed" and message.error == FOREIGN_TICKET_ERROR

    def send_as_new_ticket(self, ticket_id: str) -> Ticket:
        """A new ticket the server refused for its id (another's ticket holds it: ``FOREIGN_TICKET_ERROR``) queued
        again under new ids: the same subject, priority and messages (with their files), the refused one gone, as
        ``send_as_new`` does for a reply. ValueError for any other ticket, or a file no longer on this device
        (nothing changed then)."""
        tickets = self.cache.foreign_tickets
        failed = tickets.failed_ticket(ticket_id)
        if failed is None:
            raise ValueError("only a new ticket refused for its id can be sent as a new ticket")
        new_id = str(uuid.uuid4())
        ticket = {k: failed.ticket[k] for k in ("customer_id", "assignee_id", "subject", "status", "priority")}
        ticket["id"] = new_id
        old_files: list[dict[str, Any]] = []
        messages: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        staged: list[str] = []
        try:
            for old_id, content, internal in failed.messages:
                files = self.cache.attachments(old_id)
                paths = [Path(str(f["local_path"])) for f in files if f["local_path"]]
                if len(paths) != len(files) or not all(p.exists() for p in paths):
                    raise ValueError("a file of this ticket's messages is no longer on this device")
                row: dict[str, Any] = {"id": str(uuid.uuid4()), "ticket_id": new_id, "sender_id": self.user.id}
                row |= {"content": content, "is_internal": 1 if internal else 0}
                records = self.files.stage(new_id, row["id"], paths, [str(f["name"]) for f in files])
                staged += [str(record["local_path"]) for record in records]
                messages.append((row, records))
                old_files += files
            if not tickets.resend(ticket_id, ticket, messages):
                raise ValueError("this ticket was sent or discarded meanwhile")
        except BaseException:
            self.files.unstage(staged)
            raise
        cancel_file.discarded(self.cache, self.files, old_files)  # the refused messages' own copies go
        self._on_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id, new_id})))
        resent = self.cache.ticket(new_id)
        assert resent is not None
        return resent

    def update_ticket(
        self,
        ticket_id: str,
        *,
        status: TicketStatus | str | None = None,
        priority: Priority | str | None = None,
        assignee_id: str | Unset | None = UNSET,
    ) -> Ticket:
        cache = self.cache
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = check_choice(status, TICKET_STATUSES, "status")
        if priority is not None:
            changes["priority"] = check_choice(priority, TICKET_PRIORITIES, "priority")
        if assignee_id is not UNSET:
            changes["assignee_id"] = assignee_id
        if changes:
            cache.queue_ticket_update(ticket_id, changes)
            self._on_write()
            self._emit(events.TicketsChanged(frozenset({ticket_id})))
        ticket = cache.ticket(ticket_id)
        if ticket is None:
            raise ValueError(f"no such ticket in the cache: {ticket_id}")
        return ticket

    def take(self, ticket_id: str) -> Ticket:
        """Take an unassigned ticket: the server decides who was first (sync/collision.py); the loser gets a
        Notice ``ticket_taken`` naming the winner."""
        return self.update_ticket(ticket_id, assignee_id=self.user.id)

    def release(self, ticket_id: str) -> Ticket:
        return self.update_ticket(ticket_id, assignee_id=None)

    def mark_read(self, ticket_id: str) -> None:
        self.cache.queue_read(ticket_id)
        self._on_write()
        self._emit(events.TicketsChanged(frozenset({ticket_id})))

    # --- the user's own settings --------------------------------------------------------------------

    def set_notification_preferences(self, email: str, unread_after_minutes: int | None = None) -> None:
        """Queue a new email notification choice (offline-first; read it with ``Cache.preferences``); a bad
        value raises ValueError and queues nothing."""
        self.cache.queue_preferences(preferences.checked(email, unread_after_minutes))
        self._on_write()

    # --- drafts (local only) --------------------------------------------------------------------------

    def save_draft(self, ticket_id: str, text: str) -> None:
        self.cache.save_draft(ticket_id, text)

    async def asave_draft(self, ticket_id: str, text: str) -> None:
        """Save a draft without blocking the event loop (the composer's debounced save)."""
        await self.cache.asave_draft(ticket_id, text)
