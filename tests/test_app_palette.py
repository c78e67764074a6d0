"""The command palette (issue 14, item 9): Ctrl+K searches tickets and runs actions on the open ticket, from
the keyboard, through NiceGUI's simulated `User` on the real stack; and its pure matching rule."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from supportchat_app.components.palette import PaletteAction, palette_items
from sync.models import SearchHit
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sync_support import snooze_on_server


def test_actions_match_every_word_and_tickets_come_once() -> None:
    actions = [
        PaletteAction(label, lambda: None, keywords="change")
        for label in ("Priority: High", "Priority: Urgent", "Status: Pending", "Take this ticket")
    ]
    hits = [
        SearchHit("t1", "m1", "Printer", "on fire", ""),
        SearchHit("t1", None, "Printer", "", ""),
        SearchHit("t2", "m2", "Scanner", "high voltage", ""),
    ]
    items = palette_items("pri hi", actions, hits)
    assert [i.label for i in items] == ["Priority: High", "Printer", "Scanner"]
    assert [i.kind for i in items] == ["action", "ticket", "ticket"]
    assert [i.label for i in palette_items("", actions, [])] == [a.label for a in actions]
    assert palette_items("nothing like it", actions, []) == []


def server_ticket(db_url: str, ticket_id: str) -> tuple[str, str, str | None]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "select status, priority, assignee_id::text from tickets where id = %s", (ticket_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def test_palette_runs_actions_and_opens_tickets_from_the_keyboard(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    word = f"quasar{time.time_ns() % 10**8}"
    ticket_id = seed_ticket(
        stack.db_url, users.customer, None, f"Palette {time.time_ns()}", [(users.customer, "Please help", False)]
    )
    other_id = seed_ticket(
        stack.db_url, users.customer, users.agent, "Other ticket", [(users.customer, f"the {word} is blinking", False)]
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)

        # take it: type part of the label, Enter runs the first match
        agent.find(marker="open-search").click()
        palette = agent.find(marker="palette-input")
        palette.type("take")
        await agent.should_see(marker="palette-action", retries=WAIT)
        palette.trigger("keydown", "Enter")
        await eventually(lambda: server_ticket(stack.db_url, ticket_id)[2] == users.agent.id, "taken", 60)

        # ↓ moves to the second match: "Status: Pending" then "Status: Resolved" (open is the current one)
        agent.find(marker="open-search").click()
        palette = agent.find(marker="palette-input")
        next(iter(palette.elements)).value = ""
        palette.type("status")
        await agent.should_see(marker="palette-action", retries=WAIT)
        rows = sorted(agent.find(marker="palette-action").elements, key=lambda row: row.id)  # in page order
        assert [d.text for row in rows for d in row.descendants() if getattr(d, "text", "").startswith("Status:")] == [
            "Status: Pending",
            "Status: Resolved",
            "Status: Closed",
        ]
        palette.trigger("keydown", "ArrowDown")
        palette.trigger("keydown", "Enter")
        await eventually(lambda: server_ticket(stack.db_url, ticket_id)[0] == "resolved", "resolved", 60)

        # a ticket by a word of its messages, opened with Enter
        await eventually(lambda: other_id in {h.ticket_id for h in engine_of(agent).cache.search(word)}, "cached")
        agent.find(marker="open-search").click()
        palette = agent.find(marker="palette-input")
        next(iter(palette.elements)).value = ""
        palette.type(word)
        await agent.should_see(marker="search-hit", retries=WAIT)
        palette.trigger("keydown", "Enter")
        await eventually(lambda: bubble_with(agent, f"the {word} is blinking") is not None, "the other ticket", 60)


async def test_the_palette_unsnoozes_a_snoozed_ticket(app_data: Path, users: Users, stack: StackProcess) -> None:
    """Ctrl+K on a snoozed ticket offered only more snoozes: the header's menu has Unsnooze, the palette did not."""
    ticket_id = seed_ticket(
        stack.db_url, users.customer, users.agent, f"Sleeping {time.time_ns()}", [(users.customer, "later", False)]
    )
    snooze_on_server(stack.db_url, ticket_id)
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await eventually(lambda: engine_of(agent).workspace.snoozed_until(ticket_id) is not None, "snoozed, cached")
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        agent.find(marker="open-search").click()
        palette = agent.find(marker="palette-input")
        palette.type("unsnooze")
        await agent.should_see(marker="palette-action", retries=WAIT)
        palette.trigger("keydown", "Enter")
        await eventually(lambda: server_ticket(stack.db_url, ticket_id)[0] == "open", "awake on the server", 60)
