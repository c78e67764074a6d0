"""UI state as plain dataclasses; each calls `on_change` after a mutation and never imports `ui`.

Pages own one instance per open page and redraw what depends on it from `on_change`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sync.models import TicketView
from sync.workspace_rows import InboxFilter, SavedView

STATUSES = ("open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
VIEWS: dict[TicketView, str] = {"mine": "Mine", "unassigned": "Unassigned", "all": "All"}
_VIEWS_BY_NAME: dict[str, TicketView] = {view: view for view in VIEWS}
BREACHING_SOON = 60  # minutes: the "Breaching soon" list shows tickets whose SLA is due within this


def _noop() -> None:
    return None


@dataclass
class InboxState:
    """Which tickets the list shows and which one is open."""

    view: TicketView = "mine"
    statuses: set[str] = field(default_factory=lambda: {"open", "pending"})
    priorities: set[str] = field(default_factory=set)  # empty = every priority
    selected: str | None = None
    on_change: Callable[[], None] = _noop
    # the agent workspace (issue 14): tag filter, the special lists, the saved view in use, the order
    tags: set[str] = field(default_factory=set)  # tickets with any of these tags; empty = all
    special: str | None = None  # 'snoozed' | 'breaching' | None (the inbox)
    saved_view: str | None = None  # the saved view whose filters are shown, until a filter changes
    sort: str = "last_message_desc"

    def set_tags(self, tags: set[str]) -> None:
        self.tags, self.saved_view = set(tags), None
        self.on_change()

    def set_special(self, special: str | None) -> None:
        """One of the sidebar's lists, shown plainly (open and pending, no tag or priority filter, newest first)."""
        if special not in (None, "snoozed", "breaching"):
            raise ValueError(f"unknown list {special!r}")
        self.special, self.saved_view, self.tags, self.sort = special, None, set(), "last_message_desc"
        self.statuses, self.priorities = {"open", "pending"}, set()
        self.on_change()

    def apply_view(self, view: SavedView) -> None:
        f = InboxFilter.from_json(view.filters, view.sort)
        self.view = _VIEWS_BY_NAME.get(f.view, "all")
        self.statuses = set(f.statuses) if f.statuses is not None else set(STATUSES)
        self.priorities = set(f.priorities or ())
        self.tags = set(f.tags)
        self.special = "snoozed" if f.snoozed else "breaching" if f.breaching_within is not None else None
        self.sort, self.saved_view = f.sort, view.id
        self.on_change()

    def to_filter(self) -> InboxFilter:
        """What the list shows, as the engine's filter (and what "Save view" stores)."""
        special = self.special
        return InboxFilter(
            view=self.view,
            statuses=("pending",) if special == "snoozed" else tuple(sorted(self.statuses)),
            priorities=tuple(sorted(self.priorities)) or None,
            tags=tuple(sorted(self.tags)),
            snoozed=special == "snoozed",
            breaching_within=BREACHING_SOON if special == "breaching" else None,
            sort="sla_due_asc" if special == "breaching" else InboxFilter.from_json({}, self.sort).sort,
        )

    def set_view(self, view: str) -> None:
        chosen = _VIEWS_BY_NAME.get(view)
        if chosen is None:
            raise ValueError(f"unknown view {view!r}")
        if chosen == self.view:
            return  # a widget following the state echoes it back
        self.view, self.saved_view = chosen, None
        self.on_change()

    def set_statuses(self, statuses: set[str]) -> None:
        if set(statuses) & set(STATUSES) == self.statuses:
            return
        self.statuses, self.saved_view = set(statuses) & set(STATUSES), None
        self.on_change()

    def set_priorities(self, priorities: set[str]) -> None:
        if set(priorities) & set(PRIORITIES) == self.priorities:
            return
        self.priorities, self.saved_view = set(priorities) & set(PRIORITIES), None
        self.on_change()

    def select(self, ticket_id: str | None) -> None:
        self.selected = ticket_id
        self.on_change()

    def neighbour(self, ids: list[str], step: int) -> str | None:
        """The ticket `step` places away from the selected one in `ids` (clamped), for Alt+Up/Down."""
        if not ids:
            return None
        if self.selected not in ids:
            return ids[0]
        index = min(max(ids.index(self.selected) + step, 0), len(ids) - 1)
        return ids[index]


@dataclass
class ComposerState:
    """Reply or internal note, and the text being written (mirrored into the engine's draft)."""

    mode: str = "reply"  # 'reply' | 'note'
    text: str = ""
    on_change: Callable[[], None] = _noop

    @property
    def internal(self) -> bool:
        return self.mode == "note"

    def set_mode(self, mode: str) -> None:
        if mode not in ("reply", "note"):
            raise ValueError(f"unknown composer mode {mode!r}")
        self.mode = mode
        self.on_change()


@dataclass
class TypingState:
    """Who is typing in the open ticket, expiring a few seconds after their last keystroke broadcast.

    A signal carries the server's clock when it was minted (``at``, canonical text: comparing the text compares
    the instants). A message of theirs written at or after it is what they were typing, and ends the indicator;
    one written before it (an older message re-synced or edited) does not: they are typing something new.

    A signal that names the message it came after (``after_at``: when that one was written) is judged by it
    instead: a message of theirs written after that one ends the indicator, though the server may have minted
    the signal after the message (the keystroke just before Enter: the signal and the message race, and the
    signal, arriving first, would otherwise outlive the message it was about)."""

    expires: dict[str, tuple[str, float]] = field(default_factory=dict)  # user_id -> (name, deadline)
    since: dict[str, str] = field(default_factory=dict)  # user_id -> the server's clock of their last signal
    after: dict[str, str] = field(default_factory=dict)  # user_id -> when the message their signal named was written
    on_change: Callable[[], None] = _noop

    def typing(
        self,
        user_id: str,
        name: str,
        now: float,
        ttl: float = 4.0,
        *,
        at: str | None = None,
        after_at: str | None = None,
    ) -> None:
        self.expires[user_id] = (name, now + ttl)
        for known, value in ((self.since, at), (self.after, after_at)):
            if value is None:
                known.pop(user_id, None)
            else:
                known[user_id] = value
        self.on_change()

    def stopped(self, user_id: str, written: str | None = None) -> None:
        """A message of theirs arrived, written at ``written`` (canonical; None: unknown): unless it is the one
        their last signal came after, or older (without that: older than the signal), they are done typing it."""
        if written is not None:
            after, since = self.after.get(user_id), self.since.get(user_id)
            if written <= after if after is not None else since is not None and written < since:
                return
        self.since.pop(user_id, None)
        self.after.pop(user_id, None)
        if self.expires.pop(user_id, None) is not None:
            self.on_change()

    def names(self, now: float) -> list[str]:
        self.expires = {uid: entry for uid, entry in self.expires.items() if entry[1] > now}
        return sorted(name for name, _ in self.expires.values())

    def clear(self) -> None:
        self.expires.clear()
        self.since.clear()
        self.after.clear()
        self.on_change()
