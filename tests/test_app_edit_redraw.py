"""An open inline edit survives its bubble being drawn anew (issue 13 follow-up): when the message changes under
the editor — the server's copy of an earlier edit arrives, or the same user edits it on another device — the
bubble is rebuilt, and the editor used to vanish with what had been typed. It now comes back with that text."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_edit_keystrokes import editing
from tests.test_app_flows import (  # the same harness as the flow tests
    app_data,  # noqa: F401 - fixture
    bubble_with,
    eventually,
)
from tests.test_app_message_actions import inside, visible_editor
from tests.test_sync_support import sql


def _editor_text(bubble: object) -> str | None:
    found = [d for d in bubble.descendants() if "edit-input" in getattr(d, "_markers", [])]  # type: ignore[attr-defined]
    return str(found[0].value) if len(found) == 1 else None


async def test_an_open_edit_keeps_its_text_when_the_bubble_is_redrawn(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    tag = time.time_ns()
    original, elsewhere, typed = f"Refund on Monday {tag}", f"Refund on Monday (other device) {tag}", f"Tuesday {tag}"
    async with editing(users, stack, f"Edit redraw {tag}", original, typed) as (agent, engine, _, message_id, _, _):
        # the same agent edits the message on another device: realtime brings it and the bubble is drawn anew
        sql(
            stack.db_url,
            "update messages set content = %s, edited_at = now() where id = %s",
            elsewhere,
            message_id,
        )
        await eventually(lambda: engine.cache.message(message_id).content == elsewhere, "the other device's edit")
        await eventually(lambda: bubble_with(agent, elsewhere) is not None, "the bubble drawn anew")
        redrawn = bubble_with(agent, elsewhere)
        await eventually(lambda: visible_editor(redrawn), "the editor back in the redrawn bubble")
        assert _editor_text(redrawn) == typed, "what was typed survives the redraw"
        inside(agent, redrawn, "edit-save").click()
        await eventually(
            lambda: sql(stack.db_url, "select content from messages where id = %s", message_id) == [(typed,)],
            "the typed text saved on the server (over the other device's, which this editor showed)",
        )
        await eventually(lambda: _closed(bubble_with(agent, typed)), "the saved text's bubble, its editor closed")


def _closed(bubble: object) -> bool:
    """The bubble shows the saved text and no editor. Until cache schema v16 a server copy of the row read before
    the push could land after it and show the other device's text for a moment (this check failed once in four
    full runs when it looked for the bubble then; tests/test_cache_stale_rows.py covers that race itself)."""
    return bubble is not None and not visible_editor(bubble)
