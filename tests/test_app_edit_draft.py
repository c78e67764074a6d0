"""An inline edit survives the app going away before Save (issue 13 follow-up): the text typed into a bubble's
editor is kept in the cache like a composer draft, a new app process on the same data dir reopens the editor
with it, Save then edits the message and leaves no draft behind, and a deleted message takes its draft along."""

from __future__ import annotations

import time
from pathlib import Path

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
from tests.test_app_message_actions import inside, visible_editor
from tests.test_sync_support import sql


async def test_an_unsaved_edit_comes_back_after_a_restart(app_data: Path, users: Users, stack: StackProcess) -> None:
    tag = time.time_ns()
    original, typed = f"The refund goes out Monday {tag}", f"The refund goes out Tuesday {tag}"
    ticket_id = seed_ticket(
        stack.db_url, users.customer, users.agent, f"Edit draft {tag}", [(users.customer, "Refund?", False)]
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        engine = engine_of(agent)
        engine.commands.send_message(ticket_id, original)
        await eventually(lambda: bubble_with(agent, original) is not None, "my message")
        message_id = next(m.id for m in engine.cache.thread(ticket_id) if m.content == original)
        await eventually(lambda: engine.cache.message(message_id).local_state == "sent", "my message on the server")
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        mine = bubble_with(agent, original)
        inside(agent, mine, "menu-edit").click()
        inside(agent, mine, "edit-input").clear().type(typed)
        await eventually(lambda: engine.cache.edit_drafts.get(message_id) == typed, "the edit kept as typed")
    # the app went away before Save: a new process on the same data dir reopens the editor with the text
    async with running_app() as again:
        await again.open(f"/?t={ticket_id}")
        await again.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: visible_editor(bubble_with(again, original)), "the editor reopened")
        mine = bubble_with(again, original)
        editor = next(d for d in mine.descendants() if "edit-input" in getattr(d, "_markers", []))
        assert editor.value == typed
        inside(again, mine, "edit-save").click()
        engine = engine_of(again)
        await eventually(lambda: "edited" in markers_in(bubble_with(again, typed)), "saved and edited")
        await eventually(lambda: engine.cache.edit_drafts.get(message_id) is None, "no draft left after Save")
        await eventually(
            lambda: sql(stack.db_url, "select content from messages where id = %s", message_id) == [(typed,)],
            "the edit on the server",
        )

        # an unsaved edit of a message that is then deleted goes with the message's text. The edit is kept the way
        # the open editor keeps it (typing into it is the first half's subject): typed into a reopened editor, the
        # words went, in full runs, to an input that a late redraw of the bubble had already replaced, three times
        # in a row in the thirteenth session's run, so this half no longer depends on that race
        await engine.cache.edit_drafts.asave(message_id, ticket_id, f"secret words {tag}")
        assert engine.cache.edit_drafts.get(message_id) == f"secret words {tag}"
        sql(stack.db_url, "update messages set deleted_at = now() where id = %s", message_id)
        await eventually(lambda: engine.cache.message(message_id).deleted_at is not None, "the tombstone, live")
        assert engine.cache.edit_drafts.get(message_id) is None, "the deleted message's unsaved edit is gone"
