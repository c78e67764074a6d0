"""UI state as plain dataclasses; each calls `on_change` after a mutation and never imports `ui`.

Pages own one instance per open page and redraw what depends on it from `on_change`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sync.models import TicketView

STATUSES = ("open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
VIEWS: dict[TicketView, str] = {"mine": "Mine", "unassigned": "Unassigned", "all": "All"}
_VIEWS_BY_NAME: dict[str, TicketView] = {view: view for view in VIEWS}


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

    def set_view(self, view: str) -> None:
        chosen = _VIEWS_BY_NAME.get(view)
        if chosen is None:
            raise ValueError(f"unknown view {view!r}")
        self.view = chosen
        self.on_change()

    def set_statuses(self, statuses: set[str]) -> None:
        self.statuses = set(statuses) & set(STATUSES)
        self.on_change()

    def set_priorities(self, priorities: set[str]) -> None:
        self.priorities = set(priorities) & set(PRIORITIES)
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
    """Who is typing in the open ticket, expiring a few seconds after their last keystroke broadcast."""

    expires: dict[str, tuple[str, float]] = field(default_factory=dict)  # user_id -> (name, deadline)
    on_change: Callable[[], None] = _noop

    def typing(self, user_id: str, name: str, now: float, ttl: float = 4.0) -> None:
        self.expires[user_id] = (name, now + ttl)
        self.on_change()

    def stopped(self, user_id: str) -> None:
        """Their message arrived: they are done typing it."""
        if self.expires.pop(user_id, None) is not None:
            self.on_change()

    def names(self, now: float) -> list[str]:
        self.expires = {uid: entry for uid, entry in self.expires.items() if entry[1] > now}
        return sorted(name for name, _ in self.expires.values())

    def clear(self) -> None:
        self.expires.clear()
        self.on_change()
