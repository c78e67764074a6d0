"""Typed events the engine publishes to subscribers (the UI). Callbacks run on the engine's event
loop; a callback that raises is logged and never breaks the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.models import SyncStatus


@dataclass(frozen=True)
class Event:
    """Base class of every engine event."""


@dataclass(frozen=True)
class StatusChanged(Event):
    status: SyncStatus


@dataclass(frozen=True)
class TicketsChanged(Event):
    ticket_ids: frozenset[str]


@dataclass(frozen=True)
class TicketsRemoved(Event):
    """Tickets that left this user's view (reassigned away, deleted): gone from the cache."""

    ticket_ids: frozenset[str]


@dataclass(frozen=True)
class MessagesChanged(Event):
    ticket_id: str
    message_ids: frozenset[str]
    new_from_others: bool


@dataclass(frozen=True)
class SyncProgress(Event):
    done: int
    total: int | None
    phase: str


@dataclass(frozen=True)
class CacheRebuilt(Event):
    reason: str
    kept_unsent: int = 0


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that is not an error of theirs, e.g. an offline ticket change
    the server overruled (``kind='ticket_update_overruled'``) or a message the server refused."""

    kind: str
    ticket_id: str | None
    text: str


@dataclass(frozen=True)
class PresenceChanged(Event):
    ticket_id: str
    viewers: tuple[str, ...]  # display names of the other people viewing the ticket


@dataclass(frozen=True)
class Typing(Event):
    """Someone else is typing in a ticket (signalled at most every 2 s while they type): show it until
    a message from them arrives or a few seconds pass without another signal."""

    ticket_id: str
    user_id: str
    name: str
