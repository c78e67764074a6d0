"""The collision guard in the UI (issue 14, item 5): who else is viewing (avatars on inbox rows and the ticket
header), and a reply that would cross someone else's: when a message from anyone else landed after the agent
started typing, sending asks first — "Carol replied 20 s ago — Send anyway / Review" (as Help Scout does).

``SendGuard`` is plain state (no ``ui``): when typing starts it remembers the newest message from others in
the thread (a server timestamp and id, so no local clock is compared with the server's); at send it lists the
messages from others that came after it. "Review" moves the mark to what is now on screen, so the next send
goes through; "Send anyway" sends as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.components.avatar import Avatar
from sync.models import Message

HISTORY_SLACK = timedelta(minutes=2)


@dataclass
class SendGuard:
    """Messages from others that arrived while the agent was writing."""

    me: str
    mark: tuple[str, str] | None = None  # (created_at, id) of the newest message from others when typing began
    started: bool = False
    since: datetime | None = None  # when typing began (local clock), for history arriving late (see newer)

    def start(self, thread: Sequence[Message], now: datetime | None = None) -> None:
        """Typing began (or the agent reviewed the thread): remember what they have seen."""
        others = [(m.created_at, m.id) for m in thread if m.sender_id != self.me and m.local_state == "sent"]
        self.mark = max(others) if others else None
        self.started = True
        self.since = now or datetime.now(UTC)

    def newer(self, thread: Sequence[Message]) -> list[Message]:
        """Messages from others after the mark (empty when typing never started in this pane). Older history
        that arrives while typing (the first sync still filling the thread) is no crossing: a message written
        more than HISTORY_SLACK before typing began never counts (the slack covers clock skew)."""
        if not self.started or self.since is None:
            return []
        oldest = self.since - HISTORY_SLACK
        return [
            m
            for m in thread
            if m.sender_id != self.me
            and m.local_state == "sent"
            and m.deleted_at is None
            and (self.mark is None or (m.created_at, m.id) > self.mark)
            and (fmt.as_datetime(m.created_at) or oldest) > oldest
        ]

    def reset(self) -> None:
        """Sent: the next message starts afresh."""
        self.mark, self.started, self.since = None, False, None


def crossed_text(newer: Sequence[Message], name_of: Callable[[str], str], now: datetime | None = None) -> str:
    """'Carol replied 20 s ago' (the newest), with how many more came meanwhile."""
    latest = newer[-1]
    moment = fmt.as_datetime(latest.created_at)
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds())) if moment else 0
    when = f"{seconds} s ago" if seconds < 60 else f"{seconds // 60} min ago"
    verb = "added a note" if latest.is_internal else "replied"
    more = f" (and {len(newer) - 1} more message{'s' if len(newer) > 2 else ''})" if len(newer) > 1 else ""
    return f"{name_of(latest.sender_id)} {verb} {when}{more}"


class CollisionDialog(ui.dialog):
    """Asks before a reply that crosses someone else's."""

    def __init__(self, text: str, *, on_send: Callable[[], None], on_review: Callable[[], None]) -> None:
        super().__init__(value=True)
        self.props('data-testid="collision-dialog"')
        self.on("hide", lambda: self.delete() if not self.is_deleted else None)  # Esc or a click outside
        with self, ui.card().classes("min-w-[380px]"):
            with ui.row(wrap=False).classes("items-center gap-2 no-wrap"):
                ui.icon("warning", color="warning", size="24px")
                ui.label(text).classes("text-base font-medium").props('data-testid="collision-text"').mark(
                    "collision-text"
                )
            ui.label("Your message was written before this arrived.").classes("text-sm opacity-70")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Review", on_click=lambda: self._pick(on_review)).props(
                    'flat no-caps data-testid="collision-review"'
                ).mark("collision-review")
                ui.button("Send anyway", on_click=lambda: self._pick(on_send)).props(
                    'unelevated no-caps color=primary data-testid="collision-send"'
                ).mark("collision-send")

    def _pick(self, action: Callable[[], None]) -> None:
        self.close()
        action()
        self.delete()  # one dialog per crossing: nothing left behind in the page (after the action, which
        # runs in this dialog's slot)


class ViewerAvatars(ui.row):
    """Small overlapping avatars of the others viewing a ticket (inbox rows)."""

    def __init__(self, names: Sequence[str], *, limit: int = 3) -> None:
        super().__init__(wrap=False)
        self.classes("items-center gap-0 no-wrap sc-viewers shrink-0 q-pr-xs")
        self.props('data-testid="row-viewers"').mark("row-viewers")
        with self:
            ui.icon("visibility", size="14px").classes("opacity-60 q-mr-xs")
            for name in names[:limit]:
                Avatar(name, size="18px").props("font-size=9px").classes("sc-viewer")
            if len(names) > limit:
                ui.label(f"+{len(names) - limit}").classes("text-xs opacity-70 q-ml-xs")
        self.tooltip(", ".join(names) + (" is viewing" if len(names) == 1 else " are viewing"))
