"""The main page: the inbox on the left, the open ticket on the right, the sync status in the header.

Engine events arrive through the workspace's `nicegui.Event`, subscribed from this page, so they run in
its context and stop with it; `WorkspaceView.on_event` routes each to the part that shows it (a `match`
over the event types). Inbox redraws are coalesced (a burst of changes during a sync redraws the list
once per tick, not once per row).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from nicegui import background_tasks, events, ui
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from supportchat_app import fmt, foreground, theme
from supportchat_app.backend import Workspace
from supportchat_app.components.context_panel import ContextPanel
from supportchat_app.components.dialogs import NewTicketDialog, SearchDialog, ShortcutSheet
from supportchat_app.components.inbox_pane import FirstRows, InboxPane
from supportchat_app.components.mentions import MentionsButton
from supportchat_app.components.palette import CommandPalette, ticket_actions
from supportchat_app.components.sync_status import SyncStatusBar
from supportchat_app.components.ticket_pane import TicketPane
from supportchat_app.components.two_factor import StaffCodeBanner
from supportchat_app.notifier import CHIME_JS, Throttle, notifier, raise_window
from supportchat_app.pages import guard, head_start
from supportchat_app.state import InboxState
from supportchat_app.theme import FOCUS_JS
from sync import LocalUser
from sync import events as sync_events
from sync.models import mentions_shown

log = logging.getLogger(__name__)

REDRAW_EVERY = 0.3
# a new message from someone else is marked read this long after it is drawn (see WorkspaceView._read_soon)
READ_AFTER = 0.05


class WorkspaceView:
    def __init__(
        self, workspace: Workspace, user: LocalUser, ticket_id: str | None, first: FirstRows | None = None
    ) -> None:
        self.workspace = workspace
        self.engine = workspace.engine
        self.user = user
        self.staff = user.is_staff
        self.client = ui.context.client
        self.focused = True
        self.told = Throttle()  # a customer writing fast is one notification and chime per quiet period, and a summary
        self.inbox_dirty = False
        self.read_due = False
        self.state = InboxState(view="all" if self.user.role == "admin" else "mine", on_change=self._filters_changed)
        self.state.selected = ticket_id
        self.pane: TicketPane | None = None
        self.context: ContextPanel | None = None  # the open ticket's customer panel (staff)
        self.awaiting: str | None = None  # a ticket asked for by URL that the first sync has not brought yet
        self.empty_label: ui.label | None = None  # the right side's "Pick a ticket" / "No tickets yet"
        self.first = first  # the inbox's first rows, sent ahead of the page (pages/head_start.py)
        self._title = theme.APP_NAME  # the page's title as the browser has it (theme.frame sets it)
        self.build()

    # layout ---------------------------------------------------------------------------------------------
    def build(self) -> None:
        self.shortcuts = ShortcutSheet()
        partial = self.engine.partial.days() is not None  # older tickets stay on the server (partial_sync.py)
        server = self.engine.partial.search_server if partial else None
        # Ctrl+K: for staff a palette that also runs actions (components/palette.py), for customers search
        self.search: SearchDialog | CommandPalette = (
            CommandPalette(self.engine.cache.search, self.open_ticket, self._palette_actions, server)
            if self.staff
            else SearchDialog(self.engine.cache.search, self.open_ticket, server)
        )
        self.new_ticket = None if self.staff else NewTicketDialog(self._create_ticket)
        ui.query(".nicegui-content").classes("p-0 gap-0")
        with (
            theme.frame(
                theme.APP_NAME,
                on_search=self.search.open_empty,
                account=(self.user.display_name, self.user.role),
                workspace=self.workspace,
                on_sign_out=self.sign_out,
                on_help=self.shortcuts.open,
            ) as frame,
            frame.status_slot,
        ):
            self.status_bar = SyncStatusBar()
            if self.staff:  # mentions of me: count, notification, the Mentions view (components/mentions.py)
                self.mentions = MentionsButton(self.engine, self.open_ticket)
        self.status_bar.show(self.engine.status)
        with ui.row(wrap=False).classes("w-full no-wrap gap-0 h-[calc(100vh-58px)]"):
            self.inbox = InboxPane(
                self.engine,
                self.user,
                self.state,
                on_open=self.open_ticket,
                on_new_ticket=self.new_ticket.open if self.new_ticket else None,
                on_mentions=self.mentions.open_view if self.staff else None,
                first=self.first,
            )
            self.right = ui.column().classes("h-full grow gap-0 min-w-0")
        self._update_title()
        ui.keyboard(on_key=self._global_key, ignore=[])
        ui.keyboard(on_key=self._plain_key)  # default ignore list: '?' typed into the composer stays text
        ui.timer(REDRAW_EVERY, self._flush)
        ui.on("scfocus", self._focus)
        self.workspace.events.subscribe(self.on_event)  # in this page's context; dropped when it goes
        self.workspace.events.subscribe(self._desk_event)
        if self.staff:
            self.workspace.events.subscribe(self.mentions.on_event)
        self.client.on_delete(self._leave_ticket)
        self.client.on_connect(lambda: ui.run_javascript(FOCUS_JS))
        if self.staff:  # who views which ticket: asked once the page's socket is up (see _watch_inbox)
            self.client.on_connect(self._watch_inbox)
        if self.state.selected and self.engine.cache.ticket(self.state.selected) is not None:
            self._show_ticket(self.state.selected)
        else:
            self.awaiting, self.state.selected = self.state.selected, None
            self._empty_right()

    def _watch_inbox(self) -> None:
        """The staff's viewers for the inbox rows (a round trip to the server, ``ticket_viewers``), once the page's
        socket connected (and again after a reconnect), not while the page is built: the build's tasks run while the
        browser paints the first rows the page was streamed with, and this one's request and the server's answer
        took the two cores from it (bench inbox_5k; bench/README, desk, twelfth pass). The first rows show the
        viewers the app already knew (presence is the engine's, shared by its pages); the list follows the call's
        answer as it follows any viewer change. After a page load in flight (foreground.py)."""

        async def watch() -> None:
            await foreground.turn()
            await self.engine.presence.watch_inbox()

        background_tasks.create(self._safely(watch()), name="watch inbox")

    def _empty_right(self) -> None:
        self.right.clear()
        self.empty_label = None
        with self.right, ui.column().classes("w-full h-full items-center justify-center opacity-60 gap-2"):
            if self.awaiting:
                ui.spinner(size="lg")
                ui.label("Looking for this ticket…").classes("text-lg")
                ui.label("It opens as soon as it arrives from the server.").classes("text-sm")
                return
            ui.icon("forum", size="56px")
            self.empty_label = ui.label(self._empty_text()).classes("text-lg").mark("empty-right")
            ui.label("Ctrl+K searches every ticket on this device · ? shows all shortcuts").classes("text-sm")

    def _empty_text(self) -> str:
        return "Pick a ticket on the left" if self.inbox.ids else "No tickets yet"

    # tickets --------------------------------------------------------------------------------------------
    def open_ticket(self, ticket_id: str) -> None:
        if not self.engine.cache.has_ticket(ticket_id):  # a server search hit: fetch it, then open it
            background_tasks.create(self._safely(self._fetch_and_open(ticket_id)), name="fetch ticket")
            return
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
        self.empty_label = None
        with self.right, ui.row(wrap=False).classes("sc-ticket-split w-full h-full no-wrap gap-0"):
            on_customer = self._toggle_context if self.staff else None
            self.pane = TicketPane(self.engine, self.user, ticket_id, on_customer=on_customer, on_open=self.open_ticket)
            self.context = None
            if self.staff:  # the customer beside the ticket; behind the header's person button in a narrow window
                self.context = ContextPanel(self.engine, self.user, ticket_id, on_open=self.open_ticket)
                self.workspace.events.subscribe(self.context.on_event)
        self._mark_read()
        background_tasks.create(self._safely(self.engine.presence.watch(ticket_id)), name="watch ticket")
        if not self.engine.cache.initial_sync_done():  # the first sync is still running: this thread first
            background_tasks.create(self._safely(self.engine.partial.fetch_thread_now(ticket_id)), name="thread now")

    def _toggle_context(self) -> None:
        if self.context is not None and not self.context.is_deleted:
            self.context.toggle()

    def _leave_ticket(self) -> None:
        if self.state.selected and self.pane is not None:
            background_tasks.create(
                self._safely(self.engine.presence.unwatch(self.state.selected)), name="unwatch ticket"
            )
        self.pane = None

    async def _fetch_and_open(self, ticket_id: str) -> None:
        if await self.engine.partial.fetch_ticket(ticket_id):
            with self.client:
                self.open_ticket(ticket_id)

    async def _safely(self, coro: Coroutine[Any, Any, object]) -> None:
        try:
            await coro
        except Exception as exc:  # presence and early fetches are niceties; offline they simply do not work
            log.info("background call failed: %s", exc)

    def _mark_read(self) -> None:
        if self.state.selected and self.focused:
            try:
                self.engine.commands.mark_read(self.state.selected)
            except ValueError as exc:
                log.info("mark_read refused: %s", exc)
            self.inbox_dirty = True

    def _read_soon(self) -> None:
        """Mark the open ticket read a moment after a new message from someone else is drawn, not in the same
        step: the marker's write and its push (the sync engine's lane builds and sends it in one step of the
        loop) used to run before NiceGUI sent this page the new bubble (bench e2e_latency, drawn → arrived).
        Messages arriving meanwhile share the one marker, which is taken for whatever ticket is open then."""
        if self.read_due:
            return
        self.read_due = True

        def due() -> None:
            self.read_due = False
            if not self.client.is_deleted:
                self._mark_read()

        asyncio.get_running_loop().call_later(READ_AFTER, due)

    def _create_ticket(self, subject: str, body: str, priority: str) -> bool:
        try:
            ticket = self.engine.commands.create_ticket(subject.strip(), body.strip(), priority)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "create the ticket"), type="negative")
            return False
        self.inbox.refresh()
        self.open_ticket(str(ticket.id))
        return True

    # state and events -------------------------------------------------------------------------------------
    def _filters_changed(self) -> None:
        self._refresh_inbox()

    def _refresh_inbox(self) -> None:
        self.inbox.refresh()
        self._update_title()
        if self.empty_label is not None:  # may have been drawn before the first sync brought the inbox's tickets
            self.empty_label.set_text(self._empty_text())

    def _flush(self) -> None:
        if self.awaiting and self.engine.cache.ticket(self.awaiting) is not None:
            awaiting, self.awaiting = self.awaiting, None
            self.open_ticket(awaiting)
        if self.inbox_dirty:
            self.inbox_dirty = False
            self._refresh_inbox()
        self._tell_held()

    def _update_title(self) -> None:
        unread = self.inbox.unread_tickets
        title = f"({unread}) {theme.APP_NAME}" if unread else theme.APP_NAME
        if title != self._title:  # each call is a script for the browser, even with the title it has
            self._title = title
            ui.page_title(title)

    def on_event(self, event: sync_events.Event) -> None:
        match event:
            case sync_events.StatusChanged() | sync_events.SyncProgress():
                self._status_changed()
            case sync_events.TicketsRemoved(ticket_ids=ids):
                self._tickets_removed(ids)
            case sync_events.TicketsChanged(ticket_ids=ids):
                self._tickets_changed(ids)
            case sync_events.MessagesChanged():
                self._messages_changed(event)
            case sync_events.AvatarsChanged(user_ids=ids):
                self._avatars_changed(ids)
            case sync_events.PresenceChanged(ticket_id=ticket_id, viewers=viewers):
                self._in_pane(ticket_id, lambda pane: pane.show_viewers(viewers))
            case sync_events.InboxViewersChanged():
                self.inbox_dirty = True
            case sync_events.Typing(ticket_id=ticket_id, user_id=user_id, name=name, at=at, after_at=after_at):
                self._in_pane(ticket_id, lambda pane: pane.on_typing(user_id, name, at, after_at))
            case sync_events.Notice() | sync_events.CacheRebuilt():
                self._tell(event)

    def _tell(self, event: sync_events.Event) -> None:
        """Events that are only something to tell the user."""
        if isinstance(event, sync_events.Notice):
            self._notice(event)
        elif isinstance(event, sync_events.CacheRebuilt):
            ui.notify(
                "This device's copy of your tickets was rebuilt from the server; unsent messages were kept.",
                type="info",
            )
            ui.navigate.reload()

    def _notice(self, notice: sync_events.Notice) -> None:
        ui.notify(notice.text, type="warning", multi_line=True)
        if notice.kind in ("message_edit_overruled", "message_edit_refused") and notice.ticket_id:
            self._in_pane(notice.ticket_id, lambda pane: pane.take_draft())  # the lost edit's text is in the draft

    def _desk_event(self, event: sync_events.Event) -> None:
        """The agent workspace's rows changed (tags, views, SLA; issue 14): the list and the header follow."""
        if isinstance(event, sync_events.WorkspaceChanged):
            self.inbox_dirty = True
            if self.pane is not None and hasattr(self.pane, "tag_editor"):
                self.pane.tag_editor.refresh()

    def _pane_of(self, ticket_id: str) -> TicketPane | None:
        """The open ticket's pane if the event is about it."""
        return self.pane if ticket_id == self.state.selected else None

    def _status_changed(self) -> None:
        self.status_bar.show(self.engine.status)  # the engine's totals are known only per finished phase
        if self.pane is not None:  # the open thread's queued replies say whether they are being sent
            self.pane.thread.set_connection(self.engine.status.state)

    def _in_pane(self, ticket_id: str, action: Callable[[TicketPane], None]) -> None:
        if (pane := self._pane_of(ticket_id)) is not None:
            action(pane)

    def _tickets_changed(self, ticket_ids: frozenset[str]) -> None:
        self.inbox_dirty = True
        if (pane := self._pane_of_any(ticket_ids)) is not None:
            pane.on_ticket_changed()

    def _pane_of_any(self, ticket_ids: frozenset[str]) -> TicketPane | None:
        return self.pane if self.state.selected in ticket_ids else None

    def _avatars_changed(self, user_ids: frozenset[str]) -> None:
        self.inbox_dirty = True
        if self.pane is not None:
            self.pane.on_avatars(user_ids)

    def _tickets_removed(self, ticket_ids: frozenset[str]) -> None:
        self.inbox_dirty = True
        if self._pane_of_any(ticket_ids) is not None:
            self.pane = None
            self.state.selected = None
            self._empty_right()

    def _messages_changed(self, event: sync_events.MessagesChanged) -> None:
        self.inbox_dirty = True
        if (pane := self._pane_of(event.ticket_id)) is not None:
            pane.on_messages(event.message_ids)
            if event.new_from_others:
                self._read_soon()
        if event.new_from_others and self.staff and not self.focused:
            self._notify(event.ticket_id, event.message_ids)

    def _notify(self, ticket_id: str, message_ids: frozenset[str]) -> None:
        cache = self.engine.cache
        ticket = cache.ticket(ticket_id)
        if ticket is None:
            return
        news = sum(1 for m in map(cache.message, message_ids) if m is not None and m.sender_id != self.user.id)
        if not self.told.allow(ticket_id, ticket.customer_id, max(news, 1)):
            return  # held: told in the summary (_tell_held)
        title = f"{ticket.customer_name or 'A customer'} · {ticket.subject}"
        background_tasks.create(
            notifier.notify(title, mentions_shown(ticket.last_message_preview) or "New message"),
            name="desktop notification",
        )
        ui.run_javascript(CHIME_JS)

    def _tell_held(self) -> None:
        """What the throttle held back, as one notification once its quiet period ended; not while the window has
        the focus (the inbox in front shows it)."""
        held = self.told.summary()
        if held is None or self.focused:
            return
        background_tasks.create(
            notifier.notify(held.text("message"), "Click to open the inbox.", on_clicked=self._open_inbox),
            name="desktop notification",
        )
        ui.run_javascript(CHIME_JS)

    def _open_inbox(self) -> None:
        """A summary was clicked: the window in front, showing the inbox (not a sidebar list)."""
        raise_window()
        if not self.inbox.is_deleted and self.state.special is not None:
            with self.client:
                self.state.set_special(None)

    def _focus(self, e: events.GenericEventArguments) -> None:
        self.focused = bool(e.args)
        if self.focused:
            self._mark_read()

    # keyboard -------------------------------------------------------------------------------------------
    def _global_key(self, e: events.KeyEventArguments) -> None:
        if not e.action.keydown:
            return
        mods = e.modifiers
        if (mods.ctrl or mods.meta) and e.key.name.lower() == "k":
            self.search.open_empty()
        elif mods.alt and e.key.arrow_up:
            self._step(-1)
        elif mods.alt and e.key.arrow_down:
            self._step(1)
        elif e.key.escape and self.context is not None and self.context.shown_narrow:
            self.context.toggle()  # the customer panel laid over the ticket in a narrow window folds again

    def _plain_key(self, e: events.KeyEventArguments) -> None:
        if e.action.keydown and e.key.name == "?":
            self.shortcuts.open()
        elif e.action.keydown and e.key.name == "t" and self.pane is not None and self.staff:
            self.pane.tag_editor.focus()  # tag the open ticket from the keyboard

    def _step(self, step: int) -> None:
        target = self.state.neighbour(self.inbox.ids, step)
        if target is not None:
            self.open_ticket(target)

    def _palette_actions(self) -> list[Any]:
        return ticket_actions(self.engine, self.user, self.state.selected, ui.notify)

    async def sign_out(self) -> None:
        self._leave_ticket()
        await self.workspace.sign_out()
        ui.navigate.to("/signin")


def create() -> None:
    @ui.page("/", title=theme.APP_NAME)
    async def index(request: Request, t: str | None = None) -> Response | None:
        workspace = await guard.enter("/", "signed-in")
        if not isinstance(workspace, Workspace):
            return workspace
        user = workspace.engine.user
        if user is None:  # signed out between the guard and here
            return RedirectResponse("/signin")
        signed_in: LocalUser = user

        def build(first: FirstRows | None = None) -> None:
            WorkspaceView(workspace, signed_in, t, first)
            StaffCodeBanner(workspace.engine)

        if head_start.ENABLED:  # the inbox's first rows now, the page once built (pages/head_start.py)
            return head_start.workspace_response(
                request, ui.context.client, workspace, user=signed_in, ticket_id=t, build=build
            )
        build()
        return None
