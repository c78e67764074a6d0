"""The sidebar lists' prefetched first rows (issue 14, components/inbox_prefetch.py) through NiceGUI's simulated
`User` on the real stack: what the page holds for each entry is exactly what the list shows once that entry is
clicked (Inbox, Snoozed, Breaching soon, a saved view), the page's state is not touched by predicting, a
change to the cache reaches the prefetched lists, and the counts and lists wait for a page load in flight.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing.user_interaction import UserInteraction
from psycopg.types.json import Jsonb

from supportchat_app import foreground
from supportchat_app.components import inbox_pane
from supportchat_app.components.inbox_pane import InboxPane
from supportchat_app.components.inbox_prefetch import InboxPrefetch, entry_states
from supportchat_app.kept import Kept
from supportchat_app.state import InboxState
from sync.workspace_rows import SavedView
from tests.conftest import User, Users, create_user
from tests.inbox import rows_of
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sync_support import sql

pytestmark = pytest.mark.timeout(240)


def _prefetched(user: Any) -> dict[str, list[str]]:
    with user:
        element = next(e for e in ui.context.client.elements.values() if isinstance(e, InboxPrefetch))
    return {key: [r["id"] for r in rows] for key, rows in element.props["lists"]}


def _pane(user: Any) -> InboxPane:
    with user:
        return next(e for e in ui.context.client.elements.values() if isinstance(e, InboxPane))


async def test_each_entrys_prefetched_rows_are_what_its_click_shows(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")  # a desk of its own: exactly these tickets
    ids = [
        seed_ticket(stack.db_url, users.customer, agent, f"Row {i}", [(users.customer, f"hi {i}", False)])
        for i in range(5)
    ]
    sql(stack.db_url, "update tickets set priority = 'urgent' where id = any(%s::uuid[])", [ids[1], ids[3]])
    sql(
        stack.db_url,
        "update ticket_sla set first_response_due_at = now() + interval '20 minutes' where ticket_id = %s",
        ids[4],
    )
    sql(
        stack.db_url,
        "insert into saved_views (owner_id, name, filters) values (%s, 'Urgent', %s)",
        agent.id,
        Jsonb({"view": "mine", "priorities": ["urgent"]}),
    )
    async with running_app() as page:
        await sign_in(page, agent)
        await page.should_see(marker="view-Urgent", retries=WAIT)
        await eventually(engine_of(page).cache.initial_sync_done, "the first sync done")
        pane = _pane(page)
        state_before = (pane.state.to_filter(), pane.state.saved_view, pane.state.special)
        urgent = next(f"view:{v.id}" for v in engine_of(page).workspace.saved_views() if v.name == "Urgent")
        await eventually(  # the view, and the SLA rows the breaching list reads, may arrive after the first
            # prefetch: its lists follow on the next tick
            lambda: (
                set(_prefetched(page).get("inbox", [])) == set(ids)
                and urgent in _prefetched(page)
                and ids[4] in _prefetched(page).get("breaching", [])
            ),
            "the lists prefetched",
        )
        assert (pane.state.to_filter(), pane.state.saved_view, pane.state.special) == state_before  # untouched
        lists = _prefetched(page)
        assert set(lists) == {"inbox", "snoozed", "breaching", urgent}  # Mentions takes the server path
        assert set(lists[urgent]) == {ids[1], ids[3]}
        assert ids[4] in lists["breaching"]
        for name, key in (("Urgent", urgent), ("breaching", "breaching"), ("snoozed", "snoozed"), ("inbox", "inbox")):
            page.find(marker=f"view-{name}").click()
            await eventually(lambda k=key: list(rows_of(page)) == lists[k], f"{name}: the prefetched rows shown")
        # the cache changes: the prefetched lists follow (off the click path, on their timer)
        sql(stack.db_url, "update tickets set priority = 'urgent' where id = %s", ids[0])
        engine_of(page).wake(pull=True)
        await eventually(lambda: set(_prefetched(page)[urgent]) == {ids[0], ids[1], ids[3]}, "the views follow")


def test_a_view_named_like_a_built_in_entry_does_not_stand_in_for_it() -> None:
    shadow = SavedView(id="v1", name="inbox", filters={"statuses": ["closed"]}, sort="last_message_desc", position=0)
    other = SavedView(id="v2", name="Closed", filters={"statuses": ["closed"]}, sort="last_message_desc", position=1)
    states = entry_states(InboxState(), [shadow, other])
    assert states["inbox"].saved_view is None and states["inbox"].statuses == {"open", "pending"}
    assert states["view:v1"].saved_view == "v1" and states["view:v1"].statuses == {"closed"}  # it has its own
    assert states["view:v2"].saved_view == "v2" and states["view:v2"].statuses == {"closed"}


def _labels(item: ui.item) -> list[str]:
    return [e.text for e in item.descendants() if isinstance(e, ui.label)]


async def test_a_view_named_like_a_built_in_entry_is_an_entry_of_its_own(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    """The sidebar keyed its entries by name, so a view called "inbox" took the Inbox entry's place in the
    highlight and the counts (and Inbox's own entry was never highlighted again)."""
    agent = create_user(stack.db_url, "agent")
    waiting = seed_ticket(stack.db_url, users.customer, agent, "Open one", [(users.customer, "hi", False)])
    closed = seed_ticket(stack.db_url, users.customer, agent, "Closed one", [(users.customer, "bye", False)])
    sql(stack.db_url, "update tickets set status = 'closed' where id = %s", closed)
    sql(
        stack.db_url,
        "insert into saved_views (owner_id, name, filters) values (%s, 'inbox', %s)",
        agent.id,
        Jsonb({"view": "mine", "statuses": ["closed"]}),
    )
    async with running_app() as page:
        await sign_in(page, agent)
        await eventually(lambda: len(page.find(marker="view-inbox").elements) == 2, "both entries drawn", 60)
        [built_in] = [e for e in page.find(marker="view-inbox").elements if _labels(e) == ["Inbox"]]
        [view] = [e for e in page.find(marker="view-inbox").elements if _labels(e) == ["inbox"]]
        await eventually(lambda: list(rows_of(page)) == [waiting], "the inbox's rows")
        await eventually(lambda: "sc-selected" in built_in.classes, "the Inbox entry highlighted")
        assert "sc-selected" not in view.classes
        UserInteraction(page, {view}, None).click()
        await eventually(lambda: list(rows_of(page)) == [closed], "the view's rows")
        await eventually(lambda: "sc-selected" in view.classes, "the view's entry highlighted")
        assert "sc-selected" not in built_in.classes
        UserInteraction(page, {built_in}, None).click()
        await eventually(lambda: list(rows_of(page)) == [waiting], "the inbox's rows again")
        await eventually(lambda: "sc-selected" in built_in.classes, "the Inbox entry highlighted again")
        assert "sc-selected" not in view.classes


@asynccontextmanager
async def _an_agents_page(users: Users, stack: StackProcess) -> AsyncIterator[tuple[Any, User, str]]:
    """A new agent's page with one ticket of theirs (returned: the page, the agent, the ticket), its inbox's list
    prefetched."""
    agent = create_user(stack.db_url, "agent")
    first = seed_ticket(stack.db_url, users.customer, agent, "First", [(users.customer, "hi", False)])
    async with running_app() as page:
        await sign_in(page, agent)
        await eventually(engine_of(page).cache.initial_sync_done, "the first sync done")
        await eventually(lambda: _prefetched(page).get("inbox") == [first], "the inbox's list prefetched")
        yield page, agent, first


async def test_the_sidebars_counts_and_lists_wait_for_a_page_load_in_flight(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open page's background work (the sidebar's counts, the prefetched lists) ran on the event loop the
    moment its socket connected, and a page loaded meanwhile waited for all of it before its first byte
    (supportchat_app/foreground.py). Now each query waits for the requests in flight."""
    async with _an_agents_page(users, stack) as (page, agent, first):
        pane = _pane(page)
        await eventually(lambda: pane.views_bar.counts.get("inbox") == 1, "the inbox's unread count")
        turns: list[int] = []
        waiting = foreground.turn

        async def counted() -> None:
            turns.append(foreground.in_flight())
            await waiting()

        monkeypatch.setattr(foreground, "turn", counted)
        monkeypatch.setattr(foreground, "MAX_WAIT", 600.0)  # only the request's end may end the wait here
        foreground._loads.in_flight += 1  # a page load in flight (as foreground.PageLoads counts it)
        try:
            second = seed_ticket(stack.db_url, users.customer, agent, "Second", [(users.customer, "hello", False)])
            engine_of(page).wake(pull=True)
            await eventually(lambda: second in rows_of(page), "the new ticket in the list")
            await eventually(lambda: len([n for n in turns if n]) >= 2, "the background waiting for its turns")
            assert pane.views_bar.counts.get("inbox") == 1  # not counted while the page load is in flight
            assert _prefetched(page).get("inbox") == [first]
        finally:
            foreground._loads.in_flight -= 1
        await eventually(lambda: pane.views_bar.counts.get("inbox") == 2, "the count once the load was answered")
        await eventually(lambda: set(_prefetched(page).get("inbox", [])) == {first, second}, "the list follows")


async def test_each_prefetched_list_takes_a_turn_of_its_own(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page requested while the lists are computed waits for one list's query at most: each list is queried after
    a turn of its own (foreground.py), not all of them after one (bench inbox_5k: 15-39 ms of the loop in a row)."""
    async with _an_agents_page(users, stack) as (page, _, _):
        pane = _pane(page)
        steps: list[str] = []
        waiting = foreground.turn

        async def counted() -> None:
            steps.append("turn")
            await waiting()

        workspace = engine_of(page).workspace
        inbox = workspace.inbox

        def queried(*args: Any, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_name == "_listed":  # not the list's own refresh on a sync event
                steps.append("list")
            return inbox(*args, **kwargs)

        monkeypatch.setattr(foreground, "turn", counted)
        monkeypatch.setattr(workspace, "inbox", queried)
        monkeypatch.setattr(inbox_pane, "_lists_kept", Kept())  # none kept: every list is queried
        assert pane.prefetch is not None
        pane.prefetch.stale = True
        with page:
            await pane._prefetch()
        lists = len(entry_states(pane.state, pane.views_bar.views))
        assert steps.count("list") == lists >= 3, steps
        assert all(a == "turn" for a, b in pairwise(steps) if b == "list"), steps


def _badge(pane: InboxPane, key: str) -> str:
    badge = pane.views_bar.badges[key]
    return badge.text if badge.visible else ""


async def test_a_page_built_after_another_reuses_its_counts_until_the_cache_changes(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page counted every sidebar list when its socket connected (views_bar.py: the breaching-soon count 7-12
    ms on the bench's desk), on the event loop, just when the next page's request arrived (bench inbox_5k loads the
    next page as soon as the last one mounted). Now a page built with the cache unchanged since another page counted
    has those counts in its first HTML and asks the cache nothing, neither while built nor at connect; once the cache
    changed, a new page counts again."""
    async with _an_agents_page(users, stack) as (page, agent, _):
        pane = _pane(page)
        await eventually(lambda: pane.views_bar.counts.get("inbox") == 1 and not pane.views_bar.stale, "counted")
        ws = engine_of(page).workspace
        asked: list[str] = []

        def recording(name: str) -> Any:
            real = getattr(ws, name)

            def recorded(*args: Any, **kwargs: Any) -> Any:
                if sys._getframe(1).f_code.co_filename.endswith("views_bar.py"):  # the header counts mentions too
                    asked.append(name)
                return real(*args, **kwargs)

            return recorded

        for name in ("count", "count_unread", "mentions"):
            monkeypatch.setattr(ws, name, recording(name))
        cache = engine_of(page).cache
        for _ in range(5):  # a background write (the engine's own bookkeeping) between the pages makes them count anew
            version = cache.data_version()
            asked.clear()
            await page.open("/")
            again = _pane(page)
            assert again is not pane
            await eventually(lambda p=again: not p.views_bar.stale, "the connect's recount")
            if cache.data_version() == version:
                break
            pane = again
        else:
            pytest.fail("the cache was written while each of five pages was built")
        assert again.views_bar.counts.get("inbox") == 1 and _badge(again, "inbox") == "1"  # in the first HTML
        assert asked == []  # the cache was not written since: nothing counted
        seed_ticket(stack.db_url, users.customer, agent, "Second", [(users.customer, "hello", False)])
        engine_of(page).wake(pull=True)
        await eventually(lambda: again.views_bar.counts.get("inbox") == 2, "the open page's count follows")
        assert "count_unread" in asked  # counted anew: the cache changed since the counts kept
        await page.open("/")
        third = _pane(page)
        assert third.views_bar.counts.get("inbox") == 2 and _badge(third, "inbox") == "2"


async def test_a_page_built_after_another_reuses_its_prefetched_lists_until_the_cache_changes(
    app_data: Path, users: Users, stack: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new page queried every sidebar list's first rows a second after its socket connected, on the event loop
    (bench inbox_5k at load 6-8: 16-65 ms of list queries in the 250 ms before the next page's request arrived, in 7
    of 12 loads). Now a list asked with the cache unchanged since is not queried again; after a write it is."""
    async with _an_agents_page(users, stack) as (page, agent, first):
        workspace = engine_of(page).workspace
        inbox = workspace.inbox
        queried: list[object] = []

        def recorded(*args: Any, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_name in ("_listed", "_prefetch"):  # not the list's own refresh
                queried.append(args[0])
            return inbox(*args, **kwargs)

        monkeypatch.setattr(workspace, "inbox", recorded)
        before = _pane(page)
        assert before.prefetch is not None
        await eventually(lambda: not before.views_bar.stale, "the first sync's writes counted")
        before.prefetch.stale = True
        with page:
            await before._prefetch()  # the lists as the cache is now
        cache = engine_of(page).cache
        for _ in range(5):  # a background write (the engine's own bookkeeping) between the pages makes them ask anew
            version = cache.data_version()
            queried.clear()
            await page.open("/")
            again = _pane(page)
            assert again.prefetch is not None
            again.prefetch.stale = True
            with page:
                await again._prefetch()
            if cache.data_version() == version:
                break
        else:
            pytest.fail("the cache was written while each of five pages was built")
        assert queried == []  # every list was asked by the page before, and nothing was written since
        assert _prefetched(page)["inbox"] == [first]
        second = seed_ticket(stack.db_url, users.customer, agent, "Second", [(users.customer, "hello", False)])
        engine_of(page).wake(pull=True)
        await eventually(lambda: second in rows_of(page), "the new ticket in the list")
        again.prefetch.stale = True
        with page:
            await again._prefetch()
        assert len(queried) >= len(entry_states(again.state, again.views_bar.views))  # asked again: a write since
        assert set(_prefetched(page)["inbox"]) == {first, second}
