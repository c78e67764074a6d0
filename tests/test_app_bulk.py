"""Bulk actions and macros in the app (issue 14, item 7) through NiceGUI's simulated `User` on the real stack:
select tickets in the inbox, change their status and apply a macro to all of them; apply a macro to the open
ticket from the command palette."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nicegui.testing.user import User

from tests.conftest import Users
from tests.inbox import check_row, inbox_list, row_of, rows_of
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


def new_macro(db_url: str, name: str, reply: str, actions: dict[str, object]) -> str:
    return str(
        sql(
            db_url,
            "insert into macros (name, reply, actions) values (%s, %s, %s::jsonb) returning id::text",
            name,
            reply,
            json.dumps(actions),
        )[0][0]
    )


async def apply_from_palette(agent: User, macro_id: str, tid: str, query: str, name: str) -> None:
    """Once the agent's cache has the macro: open the ticket, Ctrl+K's palette, find the macro, Enter."""
    engine = engine_of(agent)
    await eventually(lambda: any(m.id == macro_id for m in engine.workspace.macros()), "the macro", 60)
    await agent.open(f"/?t={tid}")
    await agent.should_see(marker="composer", retries=WAIT)
    agent.find(marker="open-search").click()
    agent.find(marker="palette-input").type(query)
    await agent.should_see(name, retries=WAIT)
    agent.find(marker="palette-input").trigger("keydown", "Enter")


async def test_bulk_status_and_macro_on_selected_tickets(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    stamp = time.time_ns()
    tids = [
        seed_ticket(
            stack.db_url, users.customer, users.agent, f"Bulk {stamp} #{i}", [(users.customer, f"question {i}", False)]
        )
        for i in range(2)
    ]
    macro_id = new_macro(stack.db_url, f"Thanks {stamp}", f"Thanks for waiting ({stamp})", {"priority": "high"})
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        engine = engine_of(agent)
        await eventually(lambda: any(m.id == macro_id for m in engine.workspace.macros()), "the macro", 60)
        await eventually(lambda: all(engine.cache.ticket(t) for t in tids), "the tickets", 60)
        await agent.open("/")
        await agent.should_see(f"Bulk {stamp} #0", retries=WAIT)
        agent.find(marker="bulk-select").click()
        for tid in tids:  # the rows' checkboxes show (the list is in selection mode), then each is clicked
            await eventually(lambda t=tid: inbox_list(agent).props["selecting"] and t in rows_of(agent), "checkbox")
            check_row(agent, tid)
        await eventually(lambda: agent.find(marker="bulk-count").elements.pop().text == "2 selected", "2 selected")
        await eventually(lambda: all(row_of(agent, t)["checked"] for t in tids), "both rows drawn checked")
        agent.find(marker="bulk-status").elements.pop().value = "pending"
        await eventually(
            lambda: (
                sql(
                    stack.db_url, "select count(*) from tickets where id = any(%s::uuid[]) and status = 'pending'", tids
                )
                == [(2,)]
            ),
            "both pending",
            60,
        )

        await eventually(lambda: agent.find(marker="bulk-count").elements.pop().text == "0 selected", "cleared")
        for tid in tids:
            check_row(agent, tid)
        await agent.should_see(marker="bulk-macro", retries=WAIT)
        agent.find(marker="bulk-macro").elements.pop().value = macro_id
        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select count(*) from messages where ticket_id = any(%s::uuid[]) and content = %s",
                    tids,
                    f"Thanks for waiting ({stamp})",
                )
                == [(2,)]
            ),
            "the macro's reply on both",
            60,
        )
        await eventually(
            lambda: (
                sql(stack.db_url, "select count(*) from tickets where id = any(%s::uuid[]) and priority = 'high'", tids)
                == [(2,)]
            ),
            "both high",
            60,
        )


async def test_palette_applies_a_macro_to_the_open_ticket(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    stamp = time.time_ns()
    tid = seed_ticket(
        stack.db_url, users.customer, users.agent, f"Palette macro {stamp}", [(users.customer, "done?", False)]
    )
    name = f"Close out {stamp}"
    macro_id = new_macro(stack.db_url, name, "Closing this one, thanks!", {"status": "resolved"})
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await apply_from_palette(agent, macro_id, tid, f"macro {stamp}", name)
        await eventually(
            lambda: sql(stack.db_url, "select status from tickets where id = %s", tid) == [("resolved",)],
            "resolved by the macro",
            60,
        )
        assert sql(
            stack.db_url,
            "select count(*) from messages where ticket_id = %s and content = %s",
            tid,
            "Closing this one, thanks!",
        ) == [(1,)]


async def test_select_toggle_says_done_while_selecting(app_data: Path, users: Users, stack: StackProcess) -> None:
    """ux14's walkthrough: the inbox's "Select" toggle kept its label (and had no accessible name saying what it
    does) in selection mode. It says "Done" there, and its aria-label names the action either way."""
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open("/")
        await agent.should_see(marker="bulk-select", retries=WAIT)
        toggle = agent.find(marker="bulk-select").elements.pop()
        assert (toggle.text, toggle.props["aria-label"], toggle.props["aria-pressed"]) == (
            "Select",
            "Select tickets for bulk actions",
            "false",
        )
        agent.find(marker="bulk-select").click()
        await eventually(lambda: toggle.text == "Done", "the toggle says Done")
        assert (toggle.props["aria-label"], toggle.props["aria-pressed"]) == ("Leave selection mode", "true")
        agent.find(marker="bulk-select").click()
        await eventually(lambda: toggle.text == "Select" and not inbox_list(agent).props["selecting"], "back")
