"""Snooze (issue 14): a ticket header button with a menu — in 1 hour, in 4 hours, tomorrow 9:00,
next Monday 9:00, until the customer replies, or a date and time of the agent's choice; "Unsnooze" on a
snoozed ticket. The ticket becomes pending with its wake-up time; the server wakes it at that time
(``wake_snoozed_tickets``, run by the notify worker) whether this app is open or not, and a customer's
reply wakes it at once. The inbox hides it meanwhile and shows it again when the time comes, offline too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nicegui import ui

from supportchat_app import fmt

if TYPE_CHECKING:
    from sync.engine import SyncEngine


def presets(now: datetime) -> list[tuple[str, datetime]]:
    """The menu's wake-up times, in the agent's local time (``now`` is aware)."""
    local = now.astimezone()
    tomorrow = (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    monday = (local + timedelta(days=7 - local.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    return [
        ("In 1 hour", local + timedelta(hours=1)),
        ("In 4 hours", local + timedelta(hours=4)),
        ("Tomorrow 9:00", tomorrow),
        ("Next Monday 9:00", monday),
    ]


def at_click(text: str) -> datetime:
    """The wake-up time of the preset called ``text``, from now (the menu may have been drawn hours ago: the ticket
    header is drawn again only when what it shows changed, components/pane_keys.py)."""
    return dict(presets(datetime.now().astimezone()))[text]


class SnoozeButton(ui.button):
    def __init__(self, engine: SyncEngine, ticket_id: str, on_done: Callable[[], None]) -> None:
        self.engine, self.ticket_id, self.on_done = engine, ticket_id, on_done
        until = engine.workspace.snoozed_until(ticket_id)
        ticket = engine.cache.ticket(ticket_id)
        snoozed = until is not None or (ticket is not None and ticket.status == "pending")
        label = f"Snoozed until {fmt.wake_time(until)}" if until else ("Waiting for reply" if snoozed else "Snooze")
        super().__init__(label, icon="snooze")
        self.props('flat no-caps dense no-wrap data-testid="snooze"').mark("snooze")
        with self, ui.menu().props('data-testid="snooze-menu"'):
            for text, _ in presets(datetime.now().astimezone()):  # the time itself is taken at the click
                ui.menu_item(text, on_click=lambda t=text: self.snooze(at_click(t))).props(
                    f'data-testid="snooze-{text}"'
                ).mark(f"snooze-{text}")
            ui.menu_item("Until the customer replies", on_click=lambda: self.snooze(None)).mark("snooze-reply")
            ui.menu_item("Pick a time…", on_click=self._pick).mark("snooze-pick")
            if snoozed:
                ui.separator()
                ui.menu_item("Unsnooze", on_click=self.unsnooze).mark("unsnooze")
        self.dialog = ui.dialog()

    def snooze(self, until: datetime | None) -> None:
        try:
            self.engine.workspace.snooze(self.ticket_id, until)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "snooze the ticket"), type="negative")
            return
        when = f"until {fmt.wake_time(until)}" if until else "until the customer replies"
        ui.notify(f"Snoozed {when}")
        self.on_done()

    def unsnooze(self) -> None:
        try:
            self.engine.workspace.unsnooze(self.ticket_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "unsnooze the ticket"), type="negative")
            return
        self.on_done()

    def _pick(self) -> None:
        tomorrow = datetime.now().astimezone() + timedelta(days=1)
        self.dialog.clear()
        with self.dialog, ui.card().classes("sc-panel gap-2"):
            ui.label("Snooze until").classes("text-base font-medium")
            day = ui.date(value=tomorrow.strftime("%Y-%m-%d")).props("minimal")
            time = ui.input("Time", value="09:00").props("dense outlined type=time").mark("snooze-time")

            def go() -> None:
                try:
                    chosen = datetime.fromisoformat(f"{day.value}T{time.value}").astimezone()
                except ValueError:
                    ui.notify("Pick a day and a time", type="warning")
                    return
                self.dialog.close()
                self.snooze(chosen)

            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat no-caps")
                ui.button("Snooze", on_click=go).props("unelevated no-caps").mark("snooze-go")
        self.dialog.open()
