"""The staff inbox on a big desk (issue 14, bench inbox_5k) through NiceGUI's simulated `User` on the real stack:
the list sends its first rows only and more as it is scrolled; a change to one ticket rebuilds that ticket's
row's data, not the list's; saved views are renamed and reordered from their sidebar menu, synced through the outbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from psycopg.types.json import Jsonb

from supportchat_app.components.inbox_pane import FIRST_ROWS, InboxPane
from tests.conftest import Users, create_user
from tests.inbox import inbox_list, rows_of
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


def _rows(user: Any) -> dict[str, Any]:
    """The inbox rows on the page (the data the list draws), by ticket id."""
    return rows_of(user)


def _pane(user: Any) -> InboxPane:
    with user:
        return next(e for e in ui.context.client.elements.values() if isinstance(e, InboxPane))


def _view_names(user: Any) -> list[str]:
    """The saved views in the sidebar, top to bottom."""
    bar = next(iter(user.find(marker="views-bar").elements))
    return [
        e._markers[1].removeprefix("view-")
        for e in bar.descendants()
        if "view-entry" in getattr(e, "_markers", [])
        and e.props.get("data-testid", "").startswith("view-")
        and e._markers[1].removeprefix("view-") not in ("inbox", "snoozed", "breaching", "mentions")
    ]


async def test_first_rows_then_more_on_scroll_and_one_change_rebuilds_one_row(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")  # a desk of its own: exactly these tickets
    total = FIRST_ROWS + 12
    ids = [
        seed_ticket(stack.db_url, users.customer, agent, f"Row {i}", [(users.customer, f"hi {i}", False)])
        for i in range(total)
    ]
    async with running_app() as page:
        await sign_in(page, agent)
        await page.should_see(f"{total} tickets", retries=WAIT)
        await eventually(lambda: len(_rows(page)) == FIRST_ROWS, "the first rows only")
        assert inbox_list(page).props["more"]  # the component asks for more rows when scrolled near its end
        page.find(marker="inbox-list").trigger("more")
        await eventually(lambda: set(_rows(page)) == set(ids), "the rest after a scroll")
        assert not inbox_list(page).props["more"]
        # the rows show before the first sync ends: its later tables (the SLA due times) redraw every row once
        await eventually(engine_of(page).cache.initial_sync_done, "the first sync done")
        pane = _pane(page)
        slas = engine_of(page).workspace.sla_of(ids)
        await eventually(lambda: all(pane.rows[t][0].sla == slas.get(t) for t in ids), "the rows drawn with their SLA")
        # ... and the customer's picture, which every row shows: the shared customer may have one (an earlier test set
        # it), and its download arriving after the rows were taken redrew every row (seen once, at load ~10)
        avatars = engine_of(page).avatars
        await eventually(
            lambda: (
                engine_of(page).cache.avatar_url(users.customer.id) is None
                or avatars.file(users.customer.id) is not None
            ),
            "the customer's picture downloaded, if she has one",
            60,
        )
        await eventually(
            lambda: all(pane.rows[t][0].picture == avatars.file(users.customer.id) for t in ids),
            "the rows drawn with the customer's picture",
            60,
        )
        before = _rows(page)
        shown = {k: v[0] for k, v in pane.rows.items()}
        sql(
            stack.db_url,
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'again')",
            ids[0],
            users.customer.id,
        )
        engine_of(page).wake(pull=True)
        await eventually(lambda: _rows(page)[ids[0]] is not before[ids[0]], "the changed ticket's row redrawn")
        after = _rows(page)
        assert set(after) == set(ids)
        # a row is rebuilt only when what it shows changed (its ticket, tags, SLA, viewers, picture...): the
        # other tickets' rows are the very same data sent again (a presence or picture update arriving meanwhile
        # may legitimately redraw a row, so compare against what each row shows)
        kept = [t for t in ids[1:] if pane.rows[t][0] == shown[t]]
        changed = {
            t: [i for i, (x, y) in enumerate(zip(shown[t], pane.rows[t][0], strict=True)) if x != y] for t in ids[1:4]
        }
        assert kept, f"every row's snapshot changed (fields by index, first rows): {changed}"
        assert all(after[t] is before[t] for t in kept), "unchanged rows are kept, not rebuilt"
        assert next(iter(after)) == ids[0]  # newest activity first


async def test_views_are_renamed_and_reordered_from_their_menu(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    del users
    agent = create_user(stack.db_url, "agent")
    for name in ("Alpha", "Beta"):
        sql(
            stack.db_url,
            "insert into saved_views (owner_id, name, filters) values (%s, %s, %s)",
            agent.id,
            name,
            Jsonb({"view": "mine"}),
        )
    async with running_app() as page:
        await sign_in(page, agent)
        await page.should_see(marker="view-Beta", retries=WAIT)
        assert _view_names(page) == ["Alpha", "Beta"]
        page.find(marker="rename-view-Alpha").click()
        page.find(marker="view-rename").clear().type("Zeta")
        page.find(marker="view-rename-save").click()
        await page.should_see(marker="view-Zeta", retries=WAIT)
        assert _view_names(page) == ["Zeta", "Beta"]  # renaming keeps the place
        page.find(marker="move-up-Beta").click()
        await eventually(lambda: _view_names(page) == ["Beta", "Zeta"], "Beta moved up")
        await eventually(
            lambda: (
                sql(stack.db_url, "select name from saved_views where owner_id = %s order by position, name", agent.id)
                == [("Beta",), ("Zeta",)]
            ),
            "the new name and order on the server",
            timeout=60,
        )


async def test_a_view_named_with_spaces_and_punctuation_gets_one_marker_and_its_exact_testid(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    agent = create_user(stack.db_url, "agent")
    name = """Bob's  "VIP" queue (EU/2) <b>=1"""
    waiting = seed_ticket(stack.db_url, users.customer, agent, "Waiting one", [(users.customer, "hi", False)])
    seed_ticket(stack.db_url, users.customer, agent, "Open one", [(users.customer, "hello", False)])
    sql(stack.db_url, "update tickets set status = 'pending' where id = %s", waiting)
    sql(
        stack.db_url,
        "insert into saved_views (owner_id, name, filters) values (%s, %s, %s)",
        agent.id,
        name,
        Jsonb({"view": "mine", "statuses": ["pending"]}),
    )
    marker = """view-Bob's_"VIP"_queue_(EU/2)_<b>=1"""  # whitespace runs become one "_"; the rest stays
    async with running_app() as page:
        await sign_in(page, agent)
        await page.should_see(marker=marker, retries=WAIT)
        entry = next(iter(page.find(marker=marker).elements))
        assert entry.props["data-testid"] == f"view-{name}"  # the exact name, quotes and all
        assert _view_names(page) == ["""Bob's_"VIP"_queue_(EU/2)_<b>=1"""]
        await page.should_see(name)  # the label shows the name as typed
        menu = next(iter(page.find(marker="""view-menu-Bob's_"VIP"_queue_(EU/2)_<b>=1""").elements))
        assert menu.props["data-testid"] == f"view-menu-{name}"
        await eventually(lambda: len(rows_of(page)) == 2, "both tickets in the inbox")
        inbox = next(iter(page.find(marker="view-inbox").elements))
        assert "sc-selected" in inbox.classes and "sc-selected" not in entry.classes
        page.find(marker=marker).click()
        await eventually(lambda: set(rows_of(page)) == {waiting}, "the view applied")
        # the highlight moved in place: a switch does not rebuild the sidebar's entries
        assert "sc-selected" in entry.classes and "sc-selected" not in inbox.classes
        assert next(iter(page.find(marker=marker).elements)) is entry
        await page.should_see(marker="""count-Bob's_"VIP"_queue_(EU/2)_<b>=1""", retries=WAIT)


async def test_the_list_acts_only_on_rows_it_shows(app_data: Path, users: Users, stack: StackProcess) -> None:
    """The browser names a row by its id: an id the list does not show (a ticket hidden by the filter, or any
    string a page sends) neither opens nor selects anything."""
    agent = create_user(stack.db_url, "agent")
    shown = seed_ticket(stack.db_url, users.customer, agent, "Shown one", [(users.customer, "hi", False)])
    hidden = seed_ticket(stack.db_url, users.customer, agent, "Hidden one", [(users.customer, "hello", False)])
    sql(stack.db_url, "update tickets set status = 'resolved' where id = %s", hidden)  # not in Open, Pending
    async with running_app() as page:
        await sign_in(page, agent)
        await eventually(lambda: set(rows_of(page)) == {shown}, "the open ticket listed")
        assert engine_of(page).cache.ticket(hidden) is not None  # in the cache, just not in this list
        page.find(marker="inbox-list").trigger("open", hidden)
        page.find(marker="inbox-list").trigger("open", "../../etc")
        await page.should_not_see(marker="ticket-pane")
        page.find(marker="bulk-select").click()
        page.find(marker="inbox-list").trigger("check", hidden)
        assert _pane(page).selection.selected == set()
        page.find(marker="inbox-list").trigger("check", shown)
        assert _pane(page).selection.selected == {shown}
        page.find(marker="inbox-list").trigger("open", shown)
        await page.should_see(marker="ticket-pane", retries=WAIT)
