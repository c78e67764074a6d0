"""How a ``snooze`` outbox entry is sent: an upsert of the ticket's row in the staff-only ``ticket_snoozes``
(migration ``20261216000100``), merged on ``ticket_id``, so a resend after a lost answer is harmless. The entry
follows the ticket's status change in the outbox (``Workspace.snooze``: the server clears a snooze when the status
changes, and a ticket that is not pending keeps none).

A refusal for good (RLS: no longer staff, the ticket reassigned away; the guard: a time more than a year ahead)
drops the entry, and the ticket shows the server's time again (sync/cache/snoozes.py) with a Notice.
"""

from __future__ import annotations

from collections.abc import Callable

from sync import events
from sync.cache import Cache
from sync.cache.snoozes import TABLE
from sync.decisions import OutboxEntry
from sync.errors import PermanentError
from sync.remote import Remote


async def send(remote: Remote, batch: list[OutboxEntry]) -> None:
    """The newest time of each ticket of the batch (the Pusher sends one entry at a time)."""
    await remote.upsert_merge(TABLE, [dict(e.payload) for e in batch], "ticket_id")


async def refused(
    cache: Cache, remote: Remote, entry: OutboxEntry, reason: str, emit: Callable[[events.Event], None]
) -> None:
    try:
        rows = await remote.rows_of_ticket(TABLE, entry.entity_id)
    except PermanentError:  # no longer visible: nothing to show
        rows = []
    await cache.workspace.snooze_refused(entry, rows[0] if rows else None)
    emit(events.TicketsChanged(frozenset({entry.entity_id})))
    emit(events.Notice("snooze_refused", entry.entity_id, f"The server refused your snooze: {reason}"))
