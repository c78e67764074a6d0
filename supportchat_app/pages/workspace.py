"""The main page: the inbox on the left, the open ticket on the right, the sync status in the header.

Engine events arrive on the event loop outside any page context; `WorkspaceView.on_event` enters this
page's client and routes each event to the part that shows it. Inbox redraws are coalesced (a burst
of changes during a sync redraws the list once per tick, not once per row).
"""

from __future__ import annotations

import logging
from typing import Any

from nicegui import background_tasks, ui
from starlette.responses import RedirectResponse

from supportchat_app import backend as backend_module
from supportchat_app import fmt, theme
from supportchat_app.backend import Workspace
from supportchat_app.components.dialogs import NewTicketDialog, SearchDialog, ShortcutSheet
from supportchat_app.components.inbox_pane import InboxPane
from supportchat_app.components.sync_status import SyncStatusBar
from supportchat_app.components.ticket_pane import TicketPane
from supportchat_app.notifier import CHIME_JS, notifier
from supportchat_app.pages import boot
from supportchat_app.state import InboxState
from supportchat_app.theme import FOCUS_JS

log = logging.getLogger(__name__)

REDRAW_EVERY = 0.3


class WorkspaceView:
    def __init__(self, workspace: Workspace, ticket_id: str | None) -> None:
        self.workspace = workspace
        self.engine = workspace.engine
        self.user = self.engine.user
        self.staff = self.user.role in ("agent", "admin")
        self.client = ui.context.client
        self.focused = True
        self.inbox_dirty = False
        self.state = InboxState(view="all" if self.user.role == "admin" else "mine",
                                on_change=self._filters_changed)
        self.state.selected = ticket_id
        self.pane: TicketPane | None = None
        self.awaiting: str | None = None  # a ticket asked for by URL that the first sync has not brought yet
        self.build()

    # layout ---------------------------------------------------------------------------------------------
    def build(self) -> None:
        self.shortcuts = ShortcutSheet()
        self.search = SearchDialog(self.engine.cache.search, self.open_ticket)
        self.new_ticket = None if self.staff else NewTicketDialog(self._create_ticket)
        ui.query(".nicegui-content").classes("p-0 gap-0")
        with theme.frame(theme.APP_NAME, on_search=self.search.open_empty, account=(
                self.user.display_name, self.user.role), on_sign_out=self.sign_out,
                on_help=self.shortcuts.open) as frame, frame.status_slot:
            self.status_bar = SyncStatusBar()
        self.status_bar.show(self.engine.status)
        with ui.row(wrap=False).classes("w-full no-wrap gap-0 h-[calc(100vh-58px)]"):
            self.inbox = InboxPane(self.engine, self.state, on_open=self.open_ticket,
                                   on_new_ticket=self.new_ticket.open if self.new_ticket else None)
            self.right = ui.column().classes("h-full grow gap-0 min-w-0")
        self._update_title()
        ui.keyboard(on_key=self._global_key, ignore=[])
        ui.keyboard(on_key=self._plain_key)  # default ignore list: '?' typed into the composer stays text
        ui.timer(REDRAW_EVERY, self._flush)
        ui.on("scfocus", self._focus)
        unsubscribe = self.workspace.listen(self.on_event)
        self.client.on_delete(unsubscribe)
        self.client.on_delete(self._leave_ticket)
        self.client.on_connect(lambda: ui.run_javascript(FOCUS_JS))
        if self.state.selected and self.engine.cache.ticket(self.state.selected) is not None:
            self._show_ticket(self.state.selected)
        else:
            self.awaiting, self.state.selected = self.state.selected, None
            self._empty_right()

    def _empty_right(self) -> None:
        self.right.clear()
        with self.right, ui.column().classes("w-full h-full items-center justify-center opacity-60 gap-2"):
            if self.awaiting:
                ui.spinner(size="lg")
                ui.label("Looking for this ticket…").classes("text-lg")
                ui.label("It opens as soon as it arrives from the server.").classes("text-sm")
                return
            ui.icon("forum", size="56px")
            ui.label("Pick a ticket on the left" if self.inbox.ids else "No tickets yet").classes("text-lg")
            ui.label("Ctrl+K searches every ticket on this device · ? shows all shortcuts").classes("text-sm")

    # tickets --------------------------------------------------------------------------------------------
    def open_ticket(self, ticket_id: str) -> None:
        self.awaiting = None
        if ticket_id == self.state.selected and self.pane is not None:
            return
        self._leave_ticket()
        self.state.selected = ticket_id
        self._show_ticket(ticket_id)
        self.inbox.refresh()
        ui.navigate.history.replace(f"/?t={ticket_id}")

    def _show_ticket(self, ticket_id: str) -> None:
        self.right.clear()
        with self.right:
            self.pane = TicketPane(self.engine, ticket_id)
        self._mark_read()
        background_tasks.create(self._safely(self.engine.watch_ticket(ticket_id)), name="watch ticket")

    def _leave_ticket(self) -> None:
        if self.state.selected and self.pane is not None:
            background_tasks.create(self._safely(self.engine.unwatch_ticket(self.state.selected)),
                                    name="unwatch ticket")
        self.pane = None

    async def _safely(self, coro: Any) -> None:
        try:
            await coro
        except Exception as exc:  # presence is a nicety; offline it simply does not work
            log.info("presence call failed: %s", exc)

    def _mark_read(self) -> None:
        if self.state.selected and self.focused:
            try:
                self.engine.mark_read(self.state.selected)
            except ValueError as exc:
                log.info("mark_read refused: %s", exc)
            self.inbox_dirty = True

    def _create_ticket(self, subject: str, body: str, priority: str) -> bool:
        try:
            ticket = self.engine.create_ticket(subject.strip(), body.strip(), priority)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "create the ticket"), type="negative")
            return False
        self.inbox.refresh()
        self.open_ticket(str(ticket.id))
        return True

    # state and events -------------------------------------------------------------------------------------
    def _filters_changed(self) -> None:
        self.inbox.refresh()
        self._update_title()

    def _flush(self) -> None:
        if self.awaiting and self.engine.cache.ticket(self.awaiting) is not None:
            awaiting, self.awaiting = self.awaiting, None
            self.open_ticket(awaiting)
        if self.inbox_dirty:
            self.inbox_dirty = False
            self.inbox.refresh()
            self._update_title()

    def _update_title(self) -> None:
        unread = self.inbox.unread_tickets
        ui.page_title(f"({unread}) {theme.APP_NAME}" if unread else theme.APP_NAME)

    def on_event(self, event: Any) -> None:
        if self.client.is_deleted:
            return
        with self.client:
            self._route(event)

    def _route(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "StatusChanged":
            self.status_bar.show(event.status)
        elif kind == "SyncProgress":
            self.status_bar.show(self.engine.status)  # the engine's totals are known only per finished phase
        elif kind in ("TicketsChanged", "TicketsRemoved"):
            self.inbox_dirty = True
            if self.pane is not None and self.state.selected in event.ticket_ids:
                if kind == "TicketsRemoved":
                    self.pane = None
                    self.state.selected = None
                    self._empty_right()
                else:
                    self.pane.on_ticket_changed()
        elif kind == "MessagesChanged":
            self.inbox_dirty = True
            if self.pane is not None and event.ticket_id == self.state.selected:
                self.pane.on_messages(event.message_ids)
                if event.new_from_others:
                    self._mark_read()
            if event.new_from_others and self.staff and not self.focused:
                self._notify(event.ticket_id)
        elif kind == "PresenceChanged":
            if self.pane is not None and event.ticket_id == self.state.selected:
                self.pane.show_viewers(event.viewers)
        elif kind == "Typing":
            if self.pane is not None and event.ticket_id == self.state.selected:
                self.pane.on_typing(event.user_id, event.name)
        elif kind == "Notice":
            ui.notify(event.text, type="warning", multi_line=True)
        elif kind == "CacheRebuilt":
            ui.notify("This device's copy of your tickets was rebuilt from the server; unsent messages were kept.",
                      type="info")
            ui.navigate.reload()

    def _notify(self, ticket_id: str) -> None:
        ticket = self.engine.cache.ticket(ticket_id)
        if ticket is None:
            return
        title = f"{ticket.customer_name or 'A customer'} · {ticket.subject}"
        background_tasks.create(notifier.notify(title, ticket.last_message_preview or "New message"),
                                name="desktop notification")
        ui.run_javascript(CHIME_JS)

    def _focus(self, e: Any) -> None:
        self.focused = bool(e.args)
        if self.focused:
            self._mark_read()

    # keyboard -------------------------------------------------------------------------------------------
    def _global_key(self, e: Any) -> None:
        if not e.action.keydown:
            return
        mods = e.modifiers
        if (mods.ctrl or mods.meta) and e.key.name.lower() == "k":
            self.search.open_empty()
        elif mods.alt and e.key.arrow_up:
            self._step(-1)
        elif mods.alt and e.key.arrow_down:
            self._step(1)

    def _plain_key(self, e: Any) -> None:
        if e.action.keydown and e.key.name == "?":
            self.shortcuts.open()

    def _step(self, step: int) -> None:
        target = self.state.neighbour(self.inbox.ids, step)
        if target is not None:
            self.open_ticket(target)

    async def sign_out(self) -> None:
        self._leave_ticket()
        await self.workspace.sign_out()
        ui.navigate.to("/signin")


def create() -> None:
    @ui.page("/", title=theme.APP_NAME)
    async def index(t: str | None = None) -> Any:
        backend = backend_module.current()
        if backend.phase != "ready":
            boot.render(backend, "/")
            return None
        workspace = await backend.workspace(theme.browser_id(), ui.context.client)
        if workspace is None:
            boot.render(backend, "/")
            return None
        if workspace.engine.user is None:
            return RedirectResponse("/signin")
        WorkspaceView(workspace, t)
        return None
