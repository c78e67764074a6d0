"""An open edit box is never drawn again under the agent: a new box (a new element in the browser) starts from the
text the server had, and the keystrokes typed since, not yet at the server, are lost with the old one. A redraw of
the bubble (its message changed: another device's edit arriving live) used to rebuild the box and reopen it with
the server's copy of the text. Checked the way the tag editor's fix is (tests/test_app_desk.py): the same element
stays on the page, with what was typed, and Save saves it; a new message from the customer, their read receipt and
a workspace change leave the edit box, the composer and the customer note box as they are."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sync.events import TicketsChanged, WorkspaceChanged
from sync.workspace_rows import SNAPSHOT_TABLES
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_app_message_actions import inside
from tests.test_app_receipts import read_as
from tests.test_sync_support import sql


def _marked(element: object, marker: str) -> object:
    found = [d for d in element.descendants() if marker in getattr(d, "_markers", [])]  # type: ignore[attr-defined]
    assert len(found) == 1, f"{len(found)} elements marked {marker!r}"
    return found[0]


class Editing(NamedTuple):
    """The agent's app with their own message, sent and on the server, open in its edit box with text typed."""

    agent: Any
    engine: Any
    ticket_id: str
    message_id: str
    bubble: Any
    box: Any


@asynccontextmanager
async def editing(users: Users, stack: StackProcess, subject: str, original: str, typed: str) -> AsyncIterator[Editing]:
    ticket_id = seed_ticket(stack.db_url, users.customer, users.agent, subject, [(users.customer, "Refund?", False)])
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        engine = engine_of(agent)
        engine.commands.send_message(ticket_id, original)
        await eventually(lambda: bubble_with(agent, original) is not None, "my message")
        message_id = next(m.id for m in engine.cache.thread(ticket_id) if m.content == original)
        await eventually(lambda: engine.cache.message(message_id).local_state == "sent", "my message on the server")
        mine = bubble_with(agent, original)
        inside(agent, mine, "menu-edit").click()
        box = _marked(mine, "edit-input")
        inside(agent, mine, "edit-input").clear().type(typed)
        yield Editing(agent, engine, ticket_id, message_id, mine, box)


async def _saved_on_server(stack: StackProcess, message_id: str, typed: str) -> None:
    await eventually(
        lambda: sql(stack.db_url, "select content from messages where id = %s", message_id) == [(typed,)],
        "the typed text saved on the server",
    )


async def test_the_edit_box_is_not_drawn_again_when_its_message_changes_under_it(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    tag = time.time_ns()
    original, elsewhere, typed = f"Refund on Monday {tag}", f"Refund Monday (phone) {tag}", f"Tuesday {tag}"
    async with editing(users, stack, f"Edit box kept {tag}", original, typed) as (agent, _, _, message_id, mine, box):
        sql(stack.db_url, "update messages set content = %s, edited_at = now() where id = %s", elsewhere, message_id)
        await eventually(lambda: bubble_with(agent, elsewhere) is mine, "the other device's text in the bubble")
        assert _marked(mine, "edit-input") is box, "the edit box was drawn again under the agent"
        assert box.value == typed  # type: ignore[attr-defined]
        # Cancel shows the message as it is now, marked edited
        inside(agent, mine, "edit-cancel").click()
        await eventually(lambda: "edited" in markers_in(bubble_with(agent, elsewhere)), "the bubble drawn anew")
        assert "edit-input" not in markers_in(bubble_with(agent, elsewhere))
        inside(agent, bubble_with(agent, elsewhere), "menu-edit").click()
        redrawn = bubble_with(agent, elsewhere)
        inside(agent, redrawn, "edit-input").clear().type(typed)
        inside(agent, redrawn, "edit-save").click()
        await _saved_on_server(stack, message_id, typed)


async def test_typing_in_the_edit_box_survives_new_messages_receipts_and_workspace_changes(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    tag = time.time_ns()
    original, typed, arriving = f"Refund on Monday {tag}", f"Refund on Tuesday {tag}", f"Thanks! {tag}"
    async with editing(users, stack, f"Edit keystrokes {tag}", original, typed) as opened:
        agent, engine, ticket_id, message_id, mine, box = opened
        composer = next(iter(agent.find(marker="composer").elements))
        note = next(iter(agent.find(marker="context-note-input").elements))
        composer.value, note.value = "half a reply", "half a note"

        # a new message from the customer arrives live, then they read the thread
        sql(
            stack.db_url,
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)",
            ticket_id,
            users.customer.id,
            arriving,
        )
        await eventually(lambda: bubble_with(agent, arriving) is not None, "the customer's new message")
        read_as(stack, users.customer, ticket_id)
        await eventually(lambda: engine.cache.read_marker(ticket_id, users.customer.id) is not None, "the receipt")
        engine.events.emit(WorkspaceChanged(frozenset(SNAPSHOT_TABLES)))  # its subscribers run at once
        engine.events.emit(TicketsChanged(frozenset({ticket_id})))

        assert bubble_with(agent, original) is mine
        assert _marked(mine, "edit-input") is box, "the edit box was drawn again under the agent"
        assert box.value == typed  # type: ignore[attr-defined]
        assert next(iter(agent.find(marker="composer").elements)) is composer
        assert composer.value == "half a reply"
        assert next(iter(agent.find(marker="context-note-input").elements)) is note
        assert note.value == "half a note"
        inside(agent, mine, "edit-save").click()
        await _saved_on_server(stack, message_id, typed)
