"""Edit and delete in the app (issue 13 items 1-2, issue 10 item 4), through the real engine, cache, realtime and
NiceGUI pages against the session's localbase: the message menu on one's own bubble (Edit in place with Save and
Cancel, Esc cancels; Delete after a confirmation), offered only while the server would take it; the customer's
open thread follows live ("edited", then "Message deleted"); staff open the revisions from the "edited" mark."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nicegui.testing import User
from nicegui.testing.user_interaction import UserInteraction

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    bubbles,
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    send,
    sign_in,
)
from tests.test_message_edits import backdate
from tests.test_sync_support import sql


def inside(user: User, element: Any, marker: str) -> UserInteraction[Any]:
    """The element marked ``marker`` within ``element`` (a bubble, a dialog), to click or type into."""
    found = {d for d in element.descendants() if marker in getattr(d, "_markers", [])}
    assert len(found) == 1, f"{len(found)} elements marked {marker!r}"
    return UserInteraction(user, found, None)


def texts(user: User) -> set[str]:
    return {str(getattr(d, "text", "")) for b in bubbles(user) for d in b.descendants()}


def visible_editor(bubble: Any) -> bool:
    return any("inline-editor" in getattr(d, "_markers", []) for d in bubble.descendants())


async def test_agent_edits_and_deletes_and_the_customer_follows_live(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Edit live {time.time_ns()}",
        [(users.customer, "Where is my order?", False)],
    )
    async with running_app() as customer:
        await sign_in(customer, users.customer)
        agent = another_user()
        await sign_in(agent, users.agent)
        await customer.open(f"/?t={ticket_id}")
        await customer.should_see(marker="composer", retries=WAIT)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        send(agent, "Your order is 1234")
        await eventually(lambda: "state-sent" in markers_in(bubble_with(agent, "Your order is 1234")), "sent")
        await eventually(lambda: bubble_with(customer, "Your order is 1234") is not None, "the reply, live")
        # the menu is on the agent's own bubble only (an agent does not delete a customer's message)
        assert "message-menu" in markers_in(bubble_with(agent, "Your order is 1234"))
        assert "message-menu" not in markers_in(bubble_with(agent, "Where is my order?"))
        assert "message-menu" not in markers_in(bubble_with(customer, "Your order is 1234"))

        # Esc cancels an edit: nothing changes
        mine = bubble_with(agent, "Your order is 1234")
        inside(agent, mine, "menu-edit").click()
        assert visible_editor(mine)
        inside(agent, mine, "edit-input").clear().type("never saved").trigger("keydown", "Escape")
        assert not visible_editor(mine)
        assert engine_of(agent).cache.outbox() == []

        # Save: the new text in place, "edited", and the customer's open thread follows; Edit chosen again while
        # the editor is open (or a redraw reopening an unsaved edit as the agent clicks) keeps that one editor
        inside(agent, mine, "menu-edit").click()
        inside(agent, mine, "menu-edit").click()
        inside(agent, mine, "edit-input").clear().type("Your order is 1243")
        inside(agent, mine, "edit-save").click()
        await eventually(lambda: "edited" in markers_in(bubble_with(agent, "Your order is 1243")), "edited, mine")
        await eventually(
            lambda: "edited" in markers_in(bubble_with(customer, "Your order is 1243")),
            "edited, live at the customer's",
        )
        assert "Your order is 1234" not in texts(customer)
        message_id = next(m.id for m in engine_of(agent).cache.thread(ticket_id) if m.content == "Your order is 1243")
        await eventually(
            lambda: (
                sql(stack.db_url, "select count(*) from message_revisions where message_id = %s", message_id) == [(1,)]
            ),
            "the revision on the server",
        )

        # staff open the revisions from the mark; the customer's mark opens nothing
        await eventually(
            lambda: [r.content for r in engine_of(agent).history.revisions(message_id)] == ["Your order is 1234"],
            "the revision in the agent's cache",
        )
        inside(agent, bubble_with(agent, "Your order is 1243"), "edited").click()
        await agent.should_see(marker="revisions")
        await agent.should_see("Your order is 1234")
        inside(customer, bubble_with(customer, "Your order is 1243"), "edited").click()
        await customer.should_not_see(marker="revisions")
        agent.find("Close").click()

        # Delete, confirmed: "Message deleted" here and at the customer's, the text nowhere on either page
        inside(agent, bubble_with(agent, "Your order is 1243"), "menu-delete").click()
        agent.find(marker="confirm-delete").click()
        await eventually(lambda: "Message deleted" in texts(agent), "deleted, mine")
        await eventually(lambda: "Message deleted" in texts(customer), "deleted, live at the customer's")
        assert not any("1243" in t or "1234" in t for t in texts(customer) | texts(agent))
        await eventually(
            lambda: sql(stack.db_url, "select content from messages where id = %s", message_id) == [("",)],
            "the tombstone on the server",
        )


async def test_the_menu_is_offered_only_while_the_server_would_take_it(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    ticket_id = seed_ticket(stack.db_url, users.customer, users.agent, f"Menu {time.time_ns()}")
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        send(agent, "recent words")
        send(agent, "older words")
        await eventually(lambda: "state-sent" in markers_in(bubble_with(agent, "older words")), "sent")
        older = next(m.id for m in engine_of(agent).cache.thread(ticket_id) if m.content == "older words")
        backdate(stack.db_url, older, 20)
        await engine_of(agent).sync_once()
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "older words") is not None, "the thread")
        # past the window: Delete only; within it: Edit and Delete
        assert "menu-edit" not in markers_in(bubble_with(agent, "older words"))
        assert "menu-delete" in markers_in(bubble_with(agent, "older words"))
        assert {"menu-edit", "menu-delete"} <= markers_in(bubble_with(agent, "recent words"))
        # a closed ticket: no menu at all (the sender may neither edit nor delete)
        sql(stack.db_url, "update tickets set status = 'closed' where id = %s", ticket_id)
        await engine_of(agent).sync_once()
        await agent.open(f"/?t={ticket_id}")
        await eventually(lambda: bubble_with(agent, "recent words") is not None, "the thread")
        assert "message-menu" not in markers_in(bubble_with(agent, "recent words"))
