"""Business hours and holidays on the desk settings page (issue 14): the weekly spans of business time per
weekday (in the SLA time zone set beside the targets) and the whole days that do not count. Admins add and
remove them (offline-first: each change is an outbox entry, shown "waiting to sync" until the server has
it); agents read them. A line says what that means right now ("SLA clocks run until Fri 17:00" or "paused
until Mon 09:00"), which is what the badges in the inbox show.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui

from supportchat_app import fmt
from supportchat_app.business_time import WEEKDAYS
from supportchat_app.components.sla_badge import calendar_of
from sync.engine import SyncEngine
from sync.workspace_rows import BusinessHours, Holiday

WORKDAYS = [1, 2, 3, 4, 5]


def _state_icon(local_state: str, error: str | None) -> None:
    if local_state == "pending":
        ui.icon("sync", size="14px").classes("opacity-60").tooltip("waiting to sync")
    elif local_state == "failed":
        ui.icon("error", size="14px", color="negative").tooltip(f"refused by the server: {error or ''}")


class SlaCalendarSettings(ui.column):
    def __init__(self, engine: SyncEngine, admin: bool) -> None:
        super().__init__()
        self.engine, self.admin = engine, admin
        self._drawn: object = None
        self.classes("w-full gap-2")
        with self:
            ui.label("Business hours and holidays").classes("text-xl font-semibold")
            ui.label(
                "SLA targets count only business time, in the time zone above. No hours at all: the clock runs "
                "round the clock (and holidays do not count either). A night shift is two spans."
            ).classes("text-sm opacity-70")
            self.now = ui.label().classes("text-sm font-medium").mark("sla-clock")
            self.week = ui.column().classes("w-full gap-1")
            if admin:
                with ui.row(wrap=False).classes("w-full items-center gap-2 no-wrap"):
                    self.days = ui.select(
                        {i + 1: name for i, name in enumerate(WEEKDAYS)}, multiple=True, value=WORKDAYS, label="Days"
                    )
                    self.days.props("dense outlined use-chips").classes("w-64").mark("hours-days")
                    self.opens = ui.input("Opens", value="09:00").props("dense outlined type=time").mark("hours-opens")
                    self.closes = ui.input("Closes", value="17:00").props("dense outlined type=time")
                    self.closes.mark("hours-closes")
                    ui.button("Add hours", icon="add", on_click=self.add_hours).props(
                        'unelevated no-caps data-testid="hours-add"'
                    ).mark("hours-add")
            ui.label("Holidays").classes("text-base font-semibold pt-2")
            self.holidays = ui.row().classes("w-full gap-2")
            if admin:
                with ui.row(wrap=False).classes("w-full items-center gap-2 no-wrap"):
                    self.day = ui.input("Date").props("dense outlined type=date stack-label").mark("holiday-day")
                    self.name = ui.input("Name").props("dense outlined").classes("grow").mark("holiday-name")
                    ui.button("Add holiday", icon="add", on_click=self.add_holiday).props(
                        'unelevated no-caps data-testid="holiday-add"'
                    ).mark("holiday-add")
        self.refresh()
        ui.timer(1.0, self.refresh)  # the outbox drains and realtime brings others' changes: follow both

    def refresh(self) -> None:
        ws = self.engine.workspace
        hours, holidays, zone = ws.sla_business_hours(), ws.sla_holidays(), ws.sla_timezone()
        calendar = calendar_of(ws)
        clock = calendar.state(datetime.now(UTC)) if calendar is not None else None
        if clock is None:
            now = "No business hours: SLA clocks run round the clock."
        elif clock.running:
            until = f" until {calendar.describe(clock.changes_at)}" if calendar and clock.changes_at else ""
            now = f"Now: business hours, SLA clocks run{until}."
        else:
            until = f" until {calendar.describe(clock.changes_at)}" if calendar and clock.changes_at else ""
            now = f"Now: outside business hours, SLA clocks are paused{until}."
        self.now.set_text(now)
        drawn = (tuple(hours), tuple(holidays), zone)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.week.clear()
        with self.week:
            for weekday, name in enumerate(WEEKDAYS, start=1):
                with ui.row(wrap=False).classes("items-center gap-2 no-wrap").mark(f"hours-{weekday}"):
                    ui.label(name).classes("w-24 font-medium")
                    spans = [h for h in hours if h.weekday == weekday]
                    if not spans:
                        ui.label("closed" if hours else "round the clock").classes("text-sm opacity-60")
                    for span in spans:
                        self._span(span)
        self.holidays.clear()
        with self.holidays:
            if not holidays:
                ui.label("No holidays.").classes("text-sm opacity-60")
            for holiday in holidays:
                self._holiday(holiday)

    def _span(self, span: BusinessHours) -> None:
        with (
            ui.element("span")
            .classes("inline-flex items-center gap-1 rounded-full px-2 text-sm bg-slate-500/15")
            .mark("hours-span", f"hours-span-{span.weekday}-{span.opens}")
        ):
            ui.label(f"{span.opens} to {span.closes}")
            _state_icon(span.local_state, span.error)
            if self.admin:
                ui.button(icon="close", on_click=lambda s=span: self.remove_hours(s)).props(
                    "flat round dense size=xs"
                ).mark(f"hours-remove-{span.weekday}-{span.opens}")

    def _holiday(self, holiday: Holiday) -> None:
        with (
            ui.element("span")
            .classes("inline-flex items-center gap-1 rounded-full px-2 text-sm bg-slate-500/15")
            .mark("holiday", f"holiday-{holiday.day}")
        ):
            ui.label(f"{holiday.day} {holiday.name}".strip())
            _state_icon(holiday.local_state, holiday.error)
            if self.admin:
                ui.button(icon="close", on_click=lambda h=holiday: self.remove_holiday(h)).props(
                    "flat round dense size=xs"
                ).mark(f"holiday-remove-{holiday.day}")

    def add_hours(self) -> None:
        ws = self.engine.workspace
        days = sorted(int(d) for d in (self.days.value or []))
        opens, closes = str(self.opens.value or "").strip(), str(self.closes.value or "").strip()
        if not days:
            ui.notify("Pick at least one day.", type="warning")
            return
        try:
            for day in days:  # checked one by one: an overlap names its day, the others are kept
                ws.add_business_hours(day, opens, closes)
        except ValueError as exc:
            ui.notify(f"{WEEKDAYS[day - 1]}: {fmt.plain_error(exc, 'add the hours')}", type="negative")
        self.refresh()

    def remove_hours(self, span: BusinessHours) -> None:
        try:
            self.engine.workspace.remove_business_hours(span.id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "remove the hours"), type="negative")
        self.refresh()

    def add_holiday(self) -> None:
        try:
            self.engine.workspace.add_holiday(str(self.day.value or "").strip(), str(self.name.value or ""))
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "add the holiday"), type="negative")
            return
        self.day.value, self.name.value = "", ""
        self.refresh()

    def remove_holiday(self, holiday: Holiday) -> None:
        try:
            self.engine.workspace.remove_holiday(holiday.day)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "remove the holiday"), type="negative")
        self.refresh()
