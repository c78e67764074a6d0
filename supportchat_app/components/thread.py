"""The scrolling chat thread of one ticket, paged from the local cache.

Opens at the newest page only and loads older pages when the reader nears the top, so a ticket with
10,000 messages opens as fast as one with ten. The scroller is a `flex-direction: column-reverse` box:
it starts at the bottom by itself, and older pages are appended at its DOM end, which is the visual
top, so loading them never moves what the reader is looking at (no scroll-position bookkeeping).
DOM order inside the scroller is therefore [live chunk, newest page, older page, ...].
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from nicegui import events, ui

from supportchat_app import fmt
from supportchat_app.components.attachment_view import attach_files
from supportchat_app.components.bubble import DayHeader, MessageBubble
from supportchat_app.components.isolated import Isolated
from supportchat_app.components.message_actions import MessageActions
from supportchat_app.components.receipts import ThreadReceipts
from sync import hops
from sync.models import Message, SyncState

E = TypeVar("E", bound=ui.element)

if TYPE_CHECKING:
    from sync.engine import SyncEngine

# SUPPORTCHAT_THREAD_PAGE_SIZE exists for the benchmark's baseline (render everything at once) and for
# support diagnosis; users never need it
PAGE_SIZE = max(1, int(os.environ.get("SUPPORTCHAT_THREAD_PAGE_SIZE", "50") or 50))
# the first page only has to fill a tall window (~10 bubbles); fewer elements make opening faster
FIRST_PAGE = min(PAGE_SIZE, 30) if "SUPPORTCHAT_THREAD_PAGE_SIZE" not in os.environ else PAGE_SIZE
NEAR_TOP_PX = 600

# emits only when the reader is close to the top; column-reverse makes scrollTop 0 at the bottom
_NEAR_TOP_JS = (
    "(e) => { const t = e.target; const left = t.scrollHeight - t.clientHeight - Math.abs(t.scrollTop);"
    f" if (left < {NEAR_TOP_PX}) emit(left); }}"
)


def cursor_of(message: Message) -> tuple[str, str]:
    return (message.created_at, message.id)


class ThreadView(ui.element):
    def __init__(
        self,
        engine: SyncEngine,
        ticket_id: str,
        *,
        me: str,
        name_of: Callable[[str], str],
        page_size: int = PAGE_SIZE,
        first_page: int = FIRST_PAGE,
    ) -> None:
        super().__init__("div")
        self.engine, self.ticket_id, self.me, self.name_of = engine, ticket_id, me, name_of
        self.page_size, self.first_page = page_size, first_page
        self.bubbles: dict[str, MessageBubble] = {}
        self.actions = MessageActions(engine, name_of)  # edit, delete, revisions (components/message_actions.py)
        staff = engine.user is not None and engine.user.is_staff
        self.receipts = ThreadReceipts.of_ticket(engine.cache, ticket_id, me=me, staff=staff)  # one read per render
        self.receipts.connection = engine.status.state
        self.oldest: Message | None = None
        self.newest: tuple[str, str] | None = None  # cursor of the newest message shown
        self.newest_day: date | None = None
        self.top_day: date | None = None
        self.top_header: DayHeader | None = None
        self.complete = False
        self._loading = False
        self.classes("sc-thread grow w-full px-4 py-2")
        self.props('data-testid="thread"').mark("thread")
        self.on("scroll", self._near_top, js_handler=_NEAR_TOP_JS, throttle=0.25)
        with self:
            # first child = lowest on screen: the browser's instant echo of a message being sent
            self.echo = ui.element("div").classes("w-full")
            with Isolated():  # a new bubble re-renders the live chunk, not the page (components/isolated.py)
                self.live = ui.column().classes("w-full gap-3 pt-1").props('data-testid="thread-live"')
        self.top: ui.element | None = None
        self.pages: list[ui.element] = []
        self._load_page(initial=True)

    # paging ------------------------------------------------------------------------------------------
    def _near_top(self, _: events.GenericEventArguments | None = None) -> None:
        self.load_older()

    def load_older(self) -> int:
        """Prepend the next older page (visually above); returns how many messages it added."""
        if self.complete or self._loading:
            return 0
        return self._load_page(initial=False)

    def _load_page(self, *, initial: bool) -> int:
        self._loading = True
        try:
            before = None if initial or self.oldest is None else cursor_of(self.oldest)
            limit = self.first_page if initial else self.page_size
            messages = self.engine.cache.thread(self.ticket_id, limit=limit, before=before)
            if self.top is not None:
                self.top.delete()
                self.top = None
            if messages:
                self._render_page(messages)
            if len(messages) < limit:
                self.complete = True
            self._draw_top()
            return len(messages)
        finally:
            self._loading = False

    def _draw_top(self) -> None:
        """The row above the oldest page: the beginning of the conversation, or the button for older pages."""
        if self.top is not None:
            self.top.delete()
        with self:
            self.top = ui.row().classes("w-full justify-center py-2")
            with self.top:
                if self.complete:
                    ui.label("Beginning of the conversation").classes("text-xs opacity-50")
                else:
                    ui.button("Load older messages", on_click=self.load_older).props(
                        "flat dense no-caps size=sm"
                    ).props('data-testid="load-older"').mark("load-older")

    def _render_page(self, messages: list[Message]) -> None:
        last_day = fmt.day_of(messages[-1].created_at)
        if self.top_header is not None and last_day == self.top_day:
            self.top_header.delete()  # the day continues into this older page; its header moves up
        with self, Isolated():  # a change in its bubbles re-renders only this page (components/isolated.py)
            page = ui.column().classes("w-full gap-3")
        self.pages.append(page)
        first_header = self._render_into(page, messages, previous_day=None)
        self.top_header, self.top_day = first_header, fmt.day_of(messages[0].created_at)
        if self.oldest is None:
            self.newest_day = last_day
            self.newest = cursor_of(messages[-1])
        self.oldest = messages[0]

    def _render_into(
        self, container: ui.element, messages: list[Message], previous_day: date | None, *, isolate: bool = False
    ) -> DayHeader | None:
        """The messages' bubbles (and day headers) at the end of `container`; with `isolate` each in an `Isolated`
        of its own (the live chunk, which grows by one bubble per message: adding one then re-renders one
        wrapper per bubble in the browser, each reusing what it drew, instead of every bubble's elements)."""
        first_header: DayHeader | None = None
        with container:
            for message in messages:
                day = fmt.day_of(message.created_at)
                if day is not None and day != previous_day:
                    _, header = _piece(isolate, partial(DayHeader, fmt.day_label(day)))
                    first_header = first_header or header
                    previous_day = day
                _piece(isolate, partial(self._bubble, message))
        return first_header

    def _bubble(self, message: Message) -> MessageBubble:
        own = str(message.sender_id) == self.me
        bubble = MessageBubble(
            message,
            own=own,
            sender_name=self.name_of(str(message.sender_id)),
            on_retry=self._retry,
            on_discard=self._discard,
            on_resend=self._send_as_new,
            receipts=self.receipts,
            name_of=self.name_of,
            actions=self.actions,
            avatar=None if own else self.engine.avatars.file(str(message.sender_id)),
        )
        attach_files(bubble, self.engine, message, on_cancel=self._discard)
        self.bubbles[bubble.message_id] = bubble
        return bubble

    # live updates -------------------------------------------------------------------------------------
    def catch_up(self) -> None:
        """Draw what the cache holds of this thread that came in without an event naming it: during the
        first sync, messages are staged and then moved into the cache at once, and that move names only
        its tickets (sync/pull.py). Newer messages are appended; when the newest page holds one older than
        the bottom that is not drawn (the thread was opened before its history arrived), the thread is
        drawn again from the newest page, as reopening it would, unless the reader has loaded older pages:
        redrawing would take them away from under the reader, so there each is drawn in its place."""
        newest = self.engine.cache.thread(self.ticket_id, limit=self.first_page)
        missing = [m for m in newest if str(m.id) not in self.bubbles]
        if not missing:
            return
        newer = [m for m in missing if self.newest is not None and cursor_of(m) > self.newest]
        if len(newer) == len(missing) or len(self.pages) > 1:
            for message in missing:
                if message not in newer:
                    self._insert(message)
            if newer:
                self.refresh(frozenset(str(m.id) for m in newer))
            return
        for element in [*self.pages, *([self.top] if self.top is not None else [])]:
            element.delete()
        self.live.clear()
        self.pages, self.top, self.bubbles = [], None, {}
        self.oldest = self.newest = self.newest_day = self.top_day = self.top_header = None
        self.complete = False
        self._load_page(initial=True)

    def append(self, message: Message) -> None:
        """A message newer than everything shown (our own send, or a live one from someone else)."""
        if str(message.id) in self.bubbles:
            self.bubbles[str(message.id)].show(message)
            return
        if self.oldest is None:
            self.oldest = message
            self.top_day = fmt.day_of(message.created_at)
        self.newest = max(self.newest, cursor_of(message)) if self.newest else cursor_of(message)
        self._render_into(self.live, [message], self.newest_day, isolate=True)
        hops.mark("drawn", str(message.id))
        self.newest_day = fmt.day_of(message.created_at) or self.newest_day

    def _insert(self, message: Message) -> None:
        """Draw a message older than the bottom in its place: two transactions can commit out of order, so a
        message can reach the cache after a newer one was drawn. One older than every drawn message comes with
        the next older page (the top offers that page again if it said the conversation began)."""
        at = cursor_of(message)
        if self.oldest is None or at < cursor_of(self.oldest):
            if self.complete and self.oldest is not None:
                self.complete = False
                self._draw_top()
            return
        if self.newest is None or at > self.newest:
            self.append(message)
            return
        drawn = sorted(self.bubbles.values(), key=lambda b: cursor_of(b.message))
        successor = next((b for b in drawn if cursor_of(b.message) > at), None)
        if successor is None:  # the bottom bubble moved earlier (re-stamped by the server, or discarded)
            self.append(message)
            return
        earlier = [b for b in drawn if cursor_of(b.message) < at]
        unit = _unit(successor)  # in the live chunk, the Isolated it sits in
        container = unit.parent_slot.parent if unit.parent_slot is not None else self.live
        isolate = container is self.live
        siblings = list(container.default_slot.children)
        index = siblings.index(unit)
        day = fmt.day_of(message.created_at)
        above = _content(siblings[index - 1]) if index else None
        header = above if isinstance(above, DayHeader) else None
        if header is not None and fmt.day_of(successor.message.created_at) != day:
            index -= 1  # the successor's day starts after this message: it goes above that day's header
        elif header is not None:
            header = None  # the header above the successor is this message's day too
        elements: list[ui.element] = []
        with container:
            if (
                header is not None
                and day is not None
                and day != fmt.day_of(earlier[-1].message.created_at if earlier else None)
            ):
                elements.append(_piece(isolate, partial(DayHeader, fmt.day_label(day)))[0])
            elements.append(_piece(isolate, partial(self._bubble, message))[0])
        for offset, element in enumerate(elements):
            element.move(container, target_index=index + offset)
        hops.mark("drawn", str(message.id))

    def clear_echo(self) -> None:
        """Remove the browser-drawn echo bubbles once the server's own bubble is on its way."""
        self.client.run_javascript(f"const s = document.getElementById('c{self.echo.id}'); s && s.replaceChildren();")

    def refresh(self, message_ids: frozenset[str] | set[str]) -> None:
        """Apply a MessagesChanged: new messages appear at the bottom, own ones update their state,
        discarded ones disappear."""
        self.refresh_receipts()
        newest = self.engine.cache.thread(self.ticket_id, limit=max(self.page_size, len(message_ids) + 10))
        seen = {str(m.id) for m in newest}
        for message in newest:
            if str(message.id) in self.bubbles:
                self.bubbles[str(message.id)].show(message)
            elif str(message.id) in message_ids and (self.newest is None or cursor_of(message) > self.newest):
                self.append(message)
            elif str(message.id) in message_ids:
                self._insert(message)  # committed after a newer one was drawn; older than the top comes with paging
        for older in [mid for mid in message_ids if mid in self.bubbles and mid not in seen]:
            if (changed := self.engine.cache.message(older)) is not None:  # edited or deleted further up
                self.bubbles[older].show(changed)
                seen.add(older)
        for gone in [mid for mid in message_ids if mid in self.bubbles and mid not in seen]:
            bubble = self.bubbles[gone]
            if bubble.own and bubble.state in ("pending", "failed"):
                _remove(self.bubbles.pop(gone))

    def refresh_avatars(self, user_ids: frozenset[str]) -> None:
        """Pictures of these users arrived or changed: redraw their avatars in the thread."""
        for bubble in self.bubbles.values():
            sender = str(bubble.message.sender_id)
            if sender in user_ids and hasattr(bubble, "avatar"):
                bubble.avatar_image = self.engine.avatars.file(sender)
                bubble.avatar.set_image(bubble.avatar_image)

    def refresh_receipts(self) -> None:
        """Read markers moved (or the project's receipts setting): redraw the receipts that changed."""
        if self.receipts.reload(self.engine.cache):
            for bubble in self.bubbles.values():
                bubble.show(bubble.message)

    def set_connection(self, state: SyncState) -> None:
        """The connection came or went (or the session ended): own messages still in the outbox say "Sending…" or
        why they wait."""
        if state != self.receipts.connection:
            self.receipts.connection = state
            for bubble in self.bubbles.values():
                if bubble.message.local_state == "pending":
                    bubble.show(bubble.message)

    def _retry(self, message_id: str) -> None:
        try:
            self.engine.commands.retry(message_id)
        except ValueError as exc:  # it was sent or discarded meanwhile
            ui.notify(f"Nothing to retry: {exc}.", type="info")
        self.refresh({message_id})

    def _send_as_new(self, message_id: str) -> None:
        """A reply refused for its id goes again under a new one (sync/commands.py ``send_as_new``)."""
        try:
            resent = self.engine.commands.send_as_new(message_id)
        except ValueError as exc:
            ui.notify(fmt.plain_error(exc, "send it as a new message"), type="warning")
            self.refresh({message_id})
            return
        bubble = self.bubbles.pop(message_id, None)
        if bubble is not None:
            _remove(bubble)
        self.append(resent.message)
        if resent.left_out and (new := self.bubbles.get(resent.message.id)) is not None:
            new.tell_left_out(resent.left_out)

    def _discard(self, message_id: str) -> None:
        try:
            self.engine.commands.discard(message_id)
        except ValueError as exc:
            ui.notify(f"This message can no longer be discarded: {exc}.", type="info")
            self.refresh({message_id})
            return
        bubble = self.bubbles.pop(message_id, None)
        if bubble is not None:
            _remove(bubble)


def _piece(isolate: bool, make: Callable[[], E]) -> tuple[ui.element, E]:
    """`make()` in the current container, alone in an `Isolated` if `isolate`: (what was added, what was made)."""
    if not isolate:
        made = make()
        return made, made
    with Isolated() as wrapper:
        made = make()
    return wrapper, made


def _unit(element: ui.element) -> ui.element:
    """The element as its container holds it: the `Isolated` it sits in alone (the live chunk), or itself."""
    parent = element.parent_slot.parent if element.parent_slot is not None else None
    return parent if isinstance(parent, Isolated) and list(parent) == [element] else element


def _content(unit: ui.element) -> ui.element:
    """What a container's child shows: the one element of a live chunk's `Isolated`, or the child itself."""
    inner = list(unit) if isinstance(unit, Isolated) else []
    return inner[0] if len(inner) == 1 else unit


def _remove(bubble: MessageBubble) -> None:
    """A bubble taken out of the thread, with the `Isolated` it sits in alone in the live chunk."""
    _unit(bubble).delete()
