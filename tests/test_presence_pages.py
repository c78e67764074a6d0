"""``Presence`` watches counted per page (sync/presence.py), on the fake live port: a reloaded page's watch
comes before the old page's unwatch, and the ticket must stay watched; a join that failed is tried again by
the next watch; the inbox replays the server's viewers (``viewers(None)``) when it is opened."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from sync import events
from sync.models import LocalUser
from sync.presence import Presence
from tests.fakes import FakeLive

ME = LocalUser("u-me", "me@example.test", "agent", "Me")


class FlakyLive(FakeLive):
    """Fails the next ``fail`` joins; knows who views what on the 'server'."""

    def __init__(self, fail: int = 0, seen: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.fail, self.seen, self.joins, self.leaves = fail, seen or [], 0, 0

    async def watch(
        self,
        ticket_id: str,
        me: Mapping[str, Any],
        on_presence: Callable[[list[dict[str, Any]]], None],
        on_typing: Callable[[dict[str, Any]], None],
    ) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("the socket is down")
        self.joins += 1
        await super().watch(ticket_id, me, on_presence, on_typing)
        on_presence([{"user_id": "u-carol", "name": "Carol"}])

    async def unwatch(self, ticket_id: str) -> None:
        self.leaves += 1
        await super().unwatch(ticket_id)

    async def viewers(self, ticket_id: str | None) -> list[dict[str, Any]]:
        return list(self.seen)


@dataclass
class Remote:
    live: FlakyLive


def presence(live: FlakyLive) -> tuple[Presence, list[events.Event]]:
    log: list[events.Event] = []
    p = Presence(Remote(live), log.append)  # type: ignore[arg-type]
    p.reset(ME)
    return p, log


async def test_a_reloaded_page_keeps_the_ticket_watched_and_sees_the_viewers_at_once() -> None:
    live = FlakyLive()
    p, log = presence(live)
    await p.watch("t1")  # the old page
    await p.watch("t1")  # the reloaded page, before the old one is gone
    assert live.joins == 1 and log[-1] == events.PresenceChanged("t1", ("Carol",))
    await p.unwatch("t1")  # the old page goes
    assert "t1" in live.watched and p.viewers["t1"] == ("Carol",)
    await p.unwatch("t1")  # the last page goes
    assert "t1" not in live.watched and live.leaves == 1 and "t1" not in p.viewers


async def test_a_failed_join_is_tried_again_by_the_next_watch() -> None:
    live = FlakyLive(fail=1)
    p, _ = presence(live)
    with pytest.raises(ConnectionError):
        await p.watch("t1")
    await p.watch("t1")
    assert live.joins == 1 and "t1" in live.watched


async def test_the_inbox_replays_who_views_what() -> None:
    seen = [
        {"ticket_id": "t1", "user_id": "u-carol", "name": "Carol", "role": "agent"},
        {"ticket_id": "t2", "user_id": "u-me", "name": "Me", "role": "agent"},  # me elsewhere: not shown
    ]
    p, log = presence(FlakyLive(seen=seen))
    await p.watch_inbox()
    assert p.inbox_viewers("t1") == ("Carol",) and p.inbox_viewers("t2") == ()
    assert [e for e in log if isinstance(e, events.InboxViewersChanged)] == [
        events.InboxViewersChanged("t1", ("Carol",))
    ]


class Held:
    """The cache, as far as ``Presence.hint`` asks it: which tickets it holds."""

    def __init__(self, *ticket_ids: str) -> None:
        self.ids = set(ticket_ids)

    def ticket(self, ticket_id: str) -> object | None:
        return object() if ticket_id in self.ids else None


async def test_events_that_may_bring_access_back_hint_the_link_once_each() -> None:
    """rt17: a refused ticket channel is joined again only when access may be back, never on a timer: a watched
    ticket that comes or changes in the cache, a role change; not a ticket the cache dropped (no longer visible),
    nor one nobody watches."""
    live = FakeLive()
    cache = Held("t1", "t3")
    p = Presence(Remote(live), lambda e: None, lambda: cache)  # type: ignore[arg-type]
    p.reset(ME)
    await p.watch("t1")
    await p.watch("t2")
    p.hint(events.TicketsChanged(frozenset({"t1", "t3"})))  # t3 is not watched
    p.hint(events.TicketsChanged(frozenset({"t2"})))  # t2 pruned from the cache: no sign of access
    p.hint(events.MessagesChanged("t1", frozenset(), new_from_others=True))  # no ticket row: no news about access
    p.hint(events.RoleChanged("customer", 0, 0))
    assert live.access_hints == [frozenset({"t1"}), None]
    await p.unwatch("t1")
    p.hint(events.TicketsChanged(frozenset({"t1"})))
    assert live.access_hints == [frozenset({"t1"}), None]
