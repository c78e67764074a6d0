"""Typed events the engine publishes to subscribers (the UI). Callbacks run on the engine's event
loop; a callback that raises is logged and never breaks the engine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sync.models import Role, SyncStatus

log = logging.getLogger(__name__)


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
class WorkspaceChanged(Event):
    """Rows of the agent workspace's tables changed (tags, canned replies, views, SLA…): re-read them."""

    tables: frozenset[str]


@dataclass(frozen=True)
class AvatarsChanged(Event):
    """These users' pictures changed or arrived on this device (``SyncEngine.avatars.file``)."""

    user_ids: frozenset[str]


@dataclass(frozen=True)
class SyncProgress(Event):
    done: int
    total: int | None
    phase: str
    overall: float | None = None  # the initial sync's rows done of all tables' rows (server count), 0..1


@dataclass(frozen=True)
class CacheRebuilt(Event):
    reason: str
    kept_unsent: int = 0


@dataclass(frozen=True)
class RoleChanged(Event):
    """The server gave the signed-in user another role (an admin promoted or demoted them): the cache was
    rebuilt for it (the unsent outbox kept) and the pages must be drawn anew for what the role may do."""

    role: Role
    kept_unsent: int = 0
    dropped_unsent: int = 0  # unsent changes the new role may not make (a demotion to customer), dropped


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
class InboxViewersChanged(Event):
    """Staff other than me started or stopped viewing a ticket (the inbox rows' avatars; sync/collision.py)."""

    ticket_id: str
    viewers: tuple[str, ...]  # display names


@dataclass(frozen=True)
class Typing(Event):
    """Someone else is typing in a ticket (signalled at most every 2 s while they type): show it until
    a message from them arrives or a few seconds pass without another signal."""

    ticket_id: str
    user_id: str
    name: str
    at: str | None = None  # the server's clock when the signal was minted (canonical), None from older servers
    # when the message the signal names as their newest was written (canonical), as this device holds it; "" when
    # the signal says they had written none there; None when it names none or this device does not hold it
    after_at: str | None = None


class EventHub:
    """The engine's subscribers. sync cannot use ``nicegui.Event`` (it never imports the UI), so this is
    the one listener list, and the app bridges it into NiceGUI's events (supportchat_app/backend.py)."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []
        self._replay: list[Event] = []
        self._taps: list[Callable[[Event], None]] = []

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Receive every event; returns the unsubscribe function. Events emitted with ``replay`` before
        anyone listened (a rebuilt cache at start) are delivered to the first subscriber."""
        self._subscribers.append(callback)
        replay, self._replay = self._replay, []
        for event in replay:
            self._deliver(callback, event)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def tap(self, callback: Callable[[Event], None]) -> None:
        """Also hand every event to ``callback`` (an engine part's own follow-up, for as long as the engine lives),
        before the subscribers; a tap takes no replayed event (those wait for the first subscriber)."""
        self._taps.append(callback)

    def emit(self, event: Event, *, replay: bool = False) -> None:
        for tap in self._taps:
            self._deliver(tap, event)
        if replay and not self._subscribers:
            self._replay.append(event)
        for callback in list(self._subscribers):
            self._deliver(callback, event)

    @staticmethod
    def _deliver(callback: Callable[[Event], None], event: Event) -> None:
        try:
            callback(event)
        except Exception:  # a broken subscriber must not break the engine or the others
            log.exception("event subscriber failed on %s", type(event).__name__)
