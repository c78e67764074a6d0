"""The collision guard's sync side (issue 14, item 5): who takes a ticket, and who views which ticket.

**Taking** a ticket is decided by the server, not by the compare-and-set of an ordinary ticket update:
``rpc take_ticket`` (migration 20261130000300) assigns the ticket to the caller only if it is still
unassigned, under the row's lock, and otherwise names who holds it. An outbox ``ticket_update`` whose
change is "assignee: nobody → me" is such a take (``is_take``); the pusher sends that part through the RPC
first and the rest of the entry, if any, as the usual compare-and-set (``without_take``). A lost take
drops the whole entry and tells the agent who was first (``lost_text``): the ticket is someone else's now.

**Viewers in the inbox**: the database broadcasts every staff member's 'viewing' and 'left' signal with
the ticket id on the private topic ``staff:viewers`` (same migration). ``InboxViewers`` keeps who views
which ticket from those signals, forgetting a viewer whose renewals stopped (a crashed client) after
``VIEWING_TTL``, like the per-ticket presence in sync/live.py; when the inbox opens, the server's last state
(``rpc ticket_viewers``, migration 20261201000400) is replayed into it, so viewers show at once. It is pure
bookkeeping with an injected clock; the channel itself is joined by the realtime link.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sync.decisions import OutboxEntry

TakeOutcome = Literal["taken", "already_yours", "lost"]
VIEWING_TTL = 50.0  # seconds without a renewal after which a viewer is forgotten (renewed every 20 s)
STAFF_VIEWERS_TOPIC = "staff:viewers"


@dataclass(frozen=True)
class TakeResult:
    """The server's answer to a take."""

    outcome: TakeOutcome
    assignee_id: str | None
    assignee_name: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TakeResult:
        outcome = row.get("outcome")
        if outcome not in ("taken", "already_yours", "lost"):
            raise ValueError(f"unexpected take outcome {outcome!r}")
        holder = row.get("assignee_id")
        return cls(outcome, str(holder) if holder else None, str(row.get("assignee_name") or ""))


def is_take(entry: OutboxEntry, me: str) -> bool:
    """Whether a queued ticket update takes an unassigned ticket for ``me``."""
    if entry.kind != "ticket_update":
        return False
    base, wanted = entry.payload.get("base") or {}, entry.payload.get("wanted") or {}
    return wanted.get("assignee_id") == me and "assignee_id" in base and base["assignee_id"] is None


def without_take(entry: OutboxEntry) -> OutboxEntry:
    """The same entry with the take done: what is left to send as a compare-and-set (may be nothing)."""
    payload = dict(entry.payload)
    base = {k: v for k, v in dict(payload.get("base") or {}).items() if k != "assignee_id"}
    wanted = {k: v for k, v in dict(payload.get("wanted") or {}).items() if k != "assignee_id"}
    return replace(entry, payload={**payload, "base": base, "wanted": wanted})


def lost_text(result: TakeResult) -> str:
    return f"{result.assignee_name or 'Another agent'} took this ticket first; it is theirs now."


@dataclass
class InboxViewers:
    """Who (other than me) views which ticket, from the ``staff:viewers`` signals."""

    me: str
    clock: Callable[[], float] = time.monotonic
    # ticket id -> user id -> (name, forget after)
    _seen: dict[str, dict[str, tuple[str, float]]] = field(default_factory=dict)

    def signal(self, event: str, payload: Mapping[str, Any]) -> str | None:
        """Apply one broadcast; returns the ticket id whose viewers changed, if any."""
        ticket_id, user_id = str(payload.get("ticket_id") or ""), str(payload.get("user_id") or "")
        if not ticket_id or not user_id or user_id == self.me:
            return None
        viewers = self._seen.setdefault(ticket_id, {})
        if event == "viewing":
            known = user_id in viewers
            viewers[user_id] = (str(payload.get("name") or ""), self.clock() + VIEWING_TTL)
            return None if known else ticket_id
        if event == "left" and viewers.pop(user_id, None) is not None:
            if not viewers:
                del self._seen[ticket_id]
            return ticket_id
        return None

    def replay(self, rows: Iterable[Mapping[str, Any]]) -> set[str]:
        """What the server says is being viewed now (``rpc ticket_viewers``), as if each had just signalled
        'viewing'; returns the tickets whose viewers changed."""
        changed = set()
        for row in rows:
            ticket_id = self.signal("viewing", row)
            if ticket_id is not None:
                changed.add(ticket_id)
        return changed

    def expire(self) -> set[str]:
        """Forget viewers whose renewals stopped; returns the tickets that changed."""
        now, changed = self.clock(), set()
        for ticket_id, viewers in list(self._seen.items()):
            for user_id, (_, until) in list(viewers.items()):
                if until < now:
                    del viewers[user_id]
                    changed.add(ticket_id)
            if not viewers:
                del self._seen[ticket_id]
        return changed

    def names(self, ticket_id: str) -> tuple[str, ...]:
        """The names of the others viewing a ticket, sorted (viewers past their renewal left out)."""
        now = self.clock()
        return tuple(sorted(name for name, until in self._seen.get(ticket_id, {}).values() if until >= now))

    def clear(self) -> None:
        self._seen.clear()
