"""An open thread draws messages that reached the cache without an event naming them (components/thread.py
``ThreadView.catch_up``), through NiceGUI's simulated `User` on the real stack, with fresh users and tickets.

During the first sync, messages are staged and moved into the cache at the end of their phase, and the move
announces only its tickets (a TicketsChanged). A thread opened before the move whose at-once fetch failed
(offline for a moment) used to stay as drawn, without its history, until the agent opened it again. Here the
move is played by writing rows straight into the app's cache and announcing their ticket, as the move does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nicegui import ui

from supportchat_app.components.bubble import DayHeader, MessageBubble
from supportchat_app.components.isolated import Isolated
from supportchat_app.components.thread import ThreadView
from sync import events
from tests.conftest import User as Account
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    bubbles,
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)


def _row(tid: str, sender: str, text: str, at: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": tid,
        "sender_id": sender,
        "content": text,
        "is_internal": False,
        "created_at": at.isoformat(),
        "deleted_at": None,
    }


def _in_order(thread: ThreadView, *, days: bool = False) -> list[str]:
    """The thread's message texts top to bottom as the reader sees them: its pages oldest first (the scroller is
    column-reverse, so its DOM holds them newest first), then the live chunk (each bubble and day header in an
    `Isolated` of its own, which the layout does not see); each page top to bottom. With `days`, each day header is
    a "day" entry."""
    out: list[str] = []
    for container in [*reversed(thread.pages), thread.live]:
        shown = [
            c for child in container.default_slot.children for c in (child if isinstance(child, Isolated) else [child])
        ]
        for child in shown:
            if days and isinstance(child, DayHeader):
                out.append("day")
            if isinstance(child, MessageBubble):
                texts = [str(getattr(d, "text", "")) for d in child.descendants()]
                out += [t for t in texts if t.startswith("m ")]
    return out


def _threads(user: Any) -> list[ThreadView]:
    with user:
        return [e for e in ui.context.client.elements.values() if isinstance(e, ThreadView)]


def _texts(user: Any) -> list[str]:
    """The thread's message texts in the order their bubbles were drawn (a thread is drawn oldest first)."""
    out: list[str] = []
    for bubble in bubbles(user):
        out += [d.text for d in bubble.descendants() if getattr(d, "text", None) and d.text.startswith("m ")]
    return out


@asynccontextmanager
async def _thread_open(stack: StackProcess, texts: list[str]) -> AsyncIterator[tuple[Any, str, Account]]:
    """A fresh customer's ticket with these messages of hers (each text followed by a per-test stamp),
    open in a fresh agent's app once its newest is shown: (the simulated user, the ticket, the customer)."""
    customer, agent = create_user(stack.db_url, "customer"), create_user(stack.db_url, "agent")
    tid = seed_ticket(stack.db_url, customer, agent, f"Thread {uuid.uuid4()}", [(customer, t, False) for t in texts])
    async with running_app() as user:
        await sign_in(user, agent)
        await user.open(f"/?t={tid}")
        await user.should_see(texts[-1], retries=WAIT)
        yield user, tid, customer


async def test_messages_moved_into_the_cache_appear_in_the_open_thread(app_data: Path, stack: StackProcess) -> None:
    stamp = time.time_ns()
    async with _thread_open(stack, [f"m first {stamp}"]) as (user, tid, customer):
        engine = engine_of(user)
        first = engine.cache.latest_message_from(tid, customer.id)
        assert first is not None
        shown_at = datetime.fromisoformat(engine.cache.message(first).created_at)

        # newer history reaches the cache with only its ticket named: appended at the bottom
        newer = _row(tid, customer.id, f"m newer {stamp}", datetime.now(UTC) + timedelta(seconds=1))
        await engine.cache.apply_backfill(tid, [newer], [])
        engine.events.emit(events.TicketsChanged(frozenset({tid})))
        await eventually(lambda: bubble_with(user, f"m newer {stamp}") is not None, "the newer message drawn", 30)

        # older history than the bottom of the thread: the thread is drawn again, in order
        older = _row(tid, customer.id, f"m older {stamp}", shown_at - timedelta(minutes=5))
        await engine.cache.apply_backfill(tid, [older], [])
        engine.events.emit(events.TicketsChanged(frozenset({tid})))
        want = [f"m older {stamp}", f"m first {stamp}", f"m newer {stamp}"]
        await eventually(lambda: _texts(user) == want, f"the thread in order: {want}", 30)


async def test_a_reader_who_loaded_older_pages_keeps_them(app_data: Path, stack: StackProcess) -> None:
    """A missing older message does not redraw a thread whose older pages the reader loaded (the redraw took them
    away, back to the newest page: found by the ninth session's review); it is drawn in its place, and newer ones
    still come in. The same for a message that a MessagesChanged names (a commit that landed after a newer one)."""
    stamp = time.time_ns()
    history = [f"m {i} {stamp}" for i in range(40)]  # more than the first page
    async with _thread_open(stack, history) as (user, tid, customer):
        engine = engine_of(user)
        thread = next(iter(_threads(user)))
        await eventually(lambda: thread.load_older() > 0 or len(thread.pages) > 1, "an older page loaded", 30)
        assert bubble_with(user, f"m 0 {stamp}") is not None
        drawn = set(thread.bubbles)
        bottom = engine.cache.latest_message_from(tid, customer.id)
        assert bottom is not None
        # older than the bottom but inside the newest page: the hole that redraws a thread of one page
        hole = datetime.fromisoformat(engine.cache.message(bottom).created_at) - timedelta(microseconds=1)
        older = _row(tid, customer.id, f"m older {stamp}", hole)
        newer = _row(tid, customer.id, f"m newer {stamp}", datetime.now(UTC) + timedelta(seconds=1))
        await engine.cache.apply_backfill(tid, [older, newer], [])
        engine.events.emit(events.TicketsChanged(frozenset({tid})))
        await eventually(lambda: bubble_with(user, f"m newer {stamp}") is not None, "the newer message drawn", 30)
        assert drawn <= set(thread.bubbles) and len(thread.pages) > 1  # nothing the reader loaded was taken away
        tail = [f"m 38 {stamp}", f"m older {stamp}", f"m 39 {stamp}", f"m newer {stamp}"]
        await eventually(lambda: _in_order(thread)[-4:] == tail, f"the hole drawn in its place: {tail}", 30)

        # a message the realtime path names, committed after newer ones were drawn: drawn in its place too
        late = _row(tid, customer.id, f"m late {stamp}", hole - timedelta(microseconds=1))
        await engine.cache.apply_backfill(tid, [late], [])
        engine.events.emit(events.MessagesChanged(tid, frozenset({late["id"]}), new_from_others=True))
        tail = [f"m 38 {stamp}", f"m late {stamp}", f"m older {stamp}", f"m 39 {stamp}", f"m newer {stamp}"]
        await eventually(lambda: _in_order(thread)[-5:] == tail, f"the late one drawn in its place: {tail}", 30)
        assert len(_in_order(thread)) == 43 and len(thread.pages) > 1


async def test_a_late_message_goes_under_its_own_day(app_data: Path, stack: StackProcess) -> None:
    """A late message of yesterday lands above today's day header, one of today below it; a message older than a
    thread that said it began offers older messages again."""
    stamp = time.time_ns()
    async with _thread_open(stack, [f"m today {stamp}"]) as (user, tid, customer):
        engine = engine_of(user)
        thread = next(iter(_threads(user)))
        today = engine.cache.latest_message_from(tid, customer.id)
        assert today is not None and thread.complete
        at = datetime.fromisoformat(engine.cache.message(today).created_at)

        async def arrive(text: str, when: datetime) -> None:
            row = _row(tid, customer.id, text, when)
            await engine.cache.apply_backfill(tid, [row], [])
            engine.events.emit(events.MessagesChanged(tid, frozenset({row["id"]}), new_from_others=True))

        # older than the top of a thread that said it began: the top offers older messages again
        await arrive(f"m y1 {stamp}", at - timedelta(days=1))
        await eventually(lambda: not thread.complete, "'Load older' offered again", 30)
        assert thread.load_older() == 1
        assert _in_order(thread, days=True) == ["day", f"m y1 {stamp}", "day", f"m today {stamp}"]

        await arrive(f"m y2 {stamp}", at - timedelta(days=1) + timedelta(minutes=1))
        await arrive(f"m t0 {stamp}", at - timedelta(microseconds=1))
        want = ["day", f"m y1 {stamp}", f"m y2 {stamp}", "day", f"m t0 {stamp}", f"m today {stamp}"]
        await eventually(lambda: _in_order(thread, days=True) == want, f"each under its day: {want}", 30)


async def test_a_reply_after_the_bottom_moved_earlier_is_drawn(app_data: Path, stack: StackProcess) -> None:
    """The bottom bubble's time can move earlier (the server stamps a message sent from a clock that runs ahead),
    leaving the thread's newest mark above every drawn message: a reply in between went looking for a successor that
    did not exist and was never drawn (found by the tenth session's review)."""
    stamp = time.time_ns()
    async with _thread_open(stack, [f"m {i} {stamp}" for i in range(40)]) as (user, tid, customer):
        engine = engine_of(user)
        thread = next(iter(_threads(user)))
        await eventually(lambda: thread.load_older() > 0 or len(thread.pages) > 1, "an older page loaded", 30)
        ahead = _row(tid, customer.id, f"m ahead {stamp}", datetime.now(UTC) + timedelta(seconds=10))
        await engine.cache.apply_backfill(tid, [ahead], [])
        engine.events.emit(events.MessagesChanged(tid, frozenset({ahead["id"]}), new_from_others=True))
        await eventually(lambda: bubble_with(user, f"m ahead {stamp}") is not None, "the bottom message drawn", 30)
        await engine.cache.apply_live({"messages": [{**ahead, "created_at": datetime.now(UTC).isoformat()}]})
        engine.events.emit(events.MessagesChanged(tid, frozenset({ahead["id"]}), new_from_others=False))
        reply = _row(tid, customer.id, f"m reply {stamp}", datetime.now(UTC) + timedelta(seconds=2))
        await engine.cache.apply_backfill(tid, [reply], [])
        engine.events.emit(events.MessagesChanged(tid, frozenset({reply["id"]}), new_from_others=True))
        want = [f"m ahead {stamp}", f"m reply {stamp}"]
        await eventually(lambda: _in_order(thread)[-2:] == want, f"the reply drawn at the bottom: {want}", 30)
