"""Who is viewing a ticket and who is typing in it, over the ``Remote``'s live port.

Best-effort by nature: a lost signal only delays an indicator, so failures are logged, never raised.
One throttle for typing, here: the UI calls ``send_typing`` on every keystroke. It lives as long as the
engine (``SyncEngine.presence``): ``watch`` and ``send_typing`` need a signed-in user (AuthError otherwise),
``unwatch`` and ``stop_typing`` always work.

A typing signal names the message it comes after (the signaller's newest message in the ticket, migration
20261202000500), so a signal that arrives after that person's next message, because the two took different
paths and the message won, is recognised as stale and dropped instead of showing "… is typing" under the
message it was about (``_stale``). A device in its first sync may not hold its user's newest message yet: its
signals name none (migration 20261206000010) and are never judged stale. A signal that arrives before that
message carries when the message it names was written (``Typing.after_at``), so the message, arriving next,
ends the indicator even when the server minted the signal after it (the keystroke just before Enter).

A ticket whose channel the server refused (this user lost access to it) shows nobody viewing and is joined again
only when access may be back (sync/live.py): ``hint`` passes on the engine's events that say so — the ticket came or
changed in the cache (a pull, realtime, a fetch on demand), or the role changed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sync import events
from sync.collision import STAFF_VIEWERS_TOPIC, InboxViewers
from sync.decisions import canonical_ts
from sync.errors import AuthError
from sync.models import LocalUser, Message, Ticket
from sync.remote import Remote

log = logging.getLogger(__name__)

TYPING_EVERY = 2.0  # seconds between two "typing" signals of one ticket while the user keeps typing
STALE_WINDOW = timedelta(seconds=30)  # a typing signal is stale only against a message this close before it


class MessageOrder(Protocol):
    """What typing needs of the cache: whose newest message is which, and whether a message is held."""

    def latest_message_from(self, ticket_id: str, sender_id: str) -> str | None: ...

    def message(self, message_id: str) -> Message | None: ...

    def initial_sync_done(self) -> bool: ...

    def ticket(self, ticket_id: str) -> Ticket | None: ...


class Presence:
    def __init__(
        self,
        remote: Remote,
        emit: Callable[[events.Event], None],
        messages: Callable[[], MessageOrder | None] = lambda: None,
    ) -> None:
        self.remote, self.emit = remote, emit
        self._messages = messages  # the signed-in user's cache, None while signed out
        self.user: LocalUser | None = None
        self.viewers: dict[str, tuple[str, ...]] = {}  # ticket id -> names of the others viewing it
        self._typing_sent: dict[str, float] = {}  # ticket id -> when we last said we are typing there
        self.inbox = InboxViewers("")  # staff: who views which ticket, for the inbox rows
        self._watchers: dict[str, int] = {}  # ticket id -> pages watching it
        self._joined: set[str] = set()  # tickets whose channel was joined

    async def watch_inbox(self) -> None:
        """Staff: hear which tickets the other staff are viewing (``staff:viewers``, sync/collision.py);
        nothing for a customer."""
        self._me()  # AuthError when signed out
        assert self.user is not None
        if not self.user.is_staff:
            return

        def on_signal(event: str, payload: dict[str, Any]) -> None:
            changed = self.inbox.signal(event, payload)
            if changed is not None:
                self.emit(events.InboxViewersChanged(changed, self.inbox.names(changed)))

        await self.remote.live.watch_topic(STAFF_VIEWERS_TOPIC, ("viewing", "left"), on_signal)
        # who views what already (the server keeps the last 'viewing'): shown now, not at their next renewal
        try:
            seen = await self.remote.live.viewers(None)
        except Exception as exc:  # best-effort: the renewals tell us within VIEWING_EVERY anyway
            log.info("who is viewing could not be read: %s", exc)
            return
        for ticket_id in sorted(self.inbox.replay(seen)):
            self.emit(events.InboxViewersChanged(ticket_id, self.inbox.names(ticket_id)))

    def inbox_viewers(self, ticket_id: str) -> tuple[str, ...]:
        """Names of the other staff viewing a ticket now (empty when not heard of, or signed out)."""
        return self.inbox.names(ticket_id)

    def expire_inbox(self) -> None:
        """Forget staff whose viewing renewals stopped (a crashed client), telling the UI."""
        for ticket_id in self.inbox.expire():
            self.emit(events.InboxViewersChanged(ticket_id, self.inbox.names(ticket_id)))

    def reset(self, user: LocalUser | None) -> None:
        """Another user (or nobody) from now on: forget what was seen and sent for the previous one."""
        self.user = user
        self.viewers.clear()
        self._watchers.clear()
        self._joined.clear()
        self._typing_sent.clear()
        self.inbox = InboxViewers(user.id if user is not None else "")

    def _me(self) -> dict[str, Any]:
        if self.user is None:
            raise AuthError("not signed in", refused=True)
        return {"user_id": self.user.id, "name": self.user.display_name, "role": self.user.role}

    async def watch(self, ticket_id: str) -> None:
        """Join this ticket's presence (others see you viewing it) and hear typing. Counted: every page showing
        the ticket watches it, and it is left when the last one unwatches (a reloaded page's new watch comes
        before the old page's unwatch). A second watcher gets the viewers known so far at once."""
        me = self._me()
        self._watchers[ticket_id] = self._watchers.get(ticket_id, 0) + 1
        if ticket_id in self._joined:
            self.emit(events.PresenceChanged(ticket_id, self.viewers.get(ticket_id, ())))
            return

        def on_presence(metas: list[dict[str, Any]]) -> None:
            names = tuple(sorted({str(m.get("name") or "") for m in metas if m.get("user_id") != me["user_id"]}))
            self.viewers[ticket_id] = names
            self.emit(events.PresenceChanged(ticket_id, names))

        def on_typing(payload: dict[str, Any]) -> None:
            user_id = str(payload.get("user_id") or "")
            if user_id and user_id != me["user_id"] and not self._stale(ticket_id, user_id, payload):
                name = str(payload.get("name") or "")
                at = canonical_ts(payload.get("at"))
                self.emit(events.Typing(ticket_id, user_id, name, at, self._after_at(payload)))

        await self.remote.live.watch(ticket_id, me, on_presence, on_typing)
        self._joined.add(ticket_id)  # only once joined: a failed join is tried again by the next watch

    def hint(self, event: events.Event) -> None:
        """The engine's events (``EventHub.tap``): a watched ticket that came or changed in the cache, or a new role,
        may mean access to a refused ticket channel is back; the link joins each refused one again once per hint."""
        if isinstance(event, events.RoleChanged):
            self.remote.live.access_may_be_back(None)
        elif isinstance(event, events.TicketsChanged) and (watched := event.ticket_ids & self._joined):
            cache = self._messages()
            # a ticket the cache no longer holds (pruned: no longer visible) is no sign of access
            held = [t for t in watched if cache is None or cache.ticket(t) is not None]
            if held:
                self.remote.live.access_may_be_back(held)

    async def unwatch(self, ticket_id: str) -> None:
        left = self._watchers.get(ticket_id, 0) - 1
        if left > 0:
            self._watchers[ticket_id] = left
            return
        self._watchers.pop(ticket_id, None)
        self._joined.discard(ticket_id)
        self.viewers.pop(ticket_id, None)
        self.stop_typing(ticket_id)
        await self.remote.live.unwatch(ticket_id)

    async def send_typing(self, ticket_id: str) -> None:
        """Tell the others viewing this ticket that you are typing; at most one signal per TYPING_EVERY."""
        me = self._me()
        now = time.monotonic()
        if now - self._typing_sent.get(ticket_id, -TYPING_EVERY) < TYPING_EVERY:
            return
        self._typing_sent[ticket_id] = now
        cache = self._messages()
        after = cache.latest_message_from(ticket_id, str(me["user_id"])) if cache is not None else None
        # in its first sync this device may not hold its user's newest message: say so rather than name an older one
        known = cache is not None and cache.initial_sync_done()
        with contextlib.suppress(Exception):  # typing hints are best-effort by nature
            await self.remote.live.typing(ticket_id, me, after, known=known)

    def stop_typing(self, ticket_id: str) -> None:
        """You stopped typing (sent, left the composer, or paused): no more signals, and the next keystroke
        says so at once. The others' indicator ends when your message arrives, or a few seconds after your
        last signal (ticket signals are minted by the database, which has no "stopped")."""
        self._typing_sent.pop(ticket_id, None)

    def _after_at(self, payload: dict[str, Any]) -> str | None:
        """When the message the signal names as the signaller's newest was written ("" : they had written none
        in the ticket), or None when it names none or this device does not hold that message."""
        if "after" not in payload:
            return None
        if payload["after"] is None:
            return ""
        cache = self._messages()
        named = cache.message(str(payload["after"])) if cache is not None else None
        return canonical_ts(named.created_at) if named is not None else None

    def _stale(self, ticket_id: str, user_id: str, payload: dict[str, Any]) -> bool:
        """The signal was sent before a message of theirs that this device already holds: it is about that
        message, which has arrived, so their typing is over. Not stale when the signal names no message
        (an older server), names their newest message here, or names one this device does not hold (newer
        than what arrived so far, or an internal note a customer never receives); nor when their newest
        message here is older than STALE_WINDOW before the signal (the server's clock on both): then the
        sender's own cache lagged behind (a first sync), and the signal is about what they type now."""
        cache = self._messages()
        if cache is None or "after" not in payload:
            return False
        latest = cache.latest_message_from(ticket_id, user_id)
        after = payload["after"]
        if latest is None or latest == after:
            return False
        if after is not None and cache.message(str(after)) is None:
            return False
        newest, at = cache.message(latest), canonical_ts(payload.get("at"))
        if newest is None or at is None:
            return False
        written = canonical_ts(newest.created_at)
        return written is not None and datetime.fromisoformat(written) > datetime.fromisoformat(at) - STALE_WINDOW
